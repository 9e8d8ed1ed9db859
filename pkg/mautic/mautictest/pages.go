package mautictest

// The HTML pages of the authorize flow, shaped like Mautic 5.1.0's
// (transcript exchanges 8, 10, 4a, 4b): same form names, actions and field
// names, so a browser or an HTTP client fills them the same way.

const redirectPage = `<!DOCTYPE html>
<html>
    <head>
        <meta charset="UTF-8" />
        <meta http-equiv="refresh" content="0;url='%s'" />
        <title>Redirecting to %s</title>
    </head>
    <body>
        Redirecting to <a href="%s">the page</a>.
    </body>
</html>`

// loginPageHTML takes the error block and the copyright year.
const loginPageHTML = `<!DOCTYPE html>
<html>
<head>
    <meta charset="UTF-8" />
    <title>Mautic</title>
</head>
<body>
<div class="container">
    <div class="mautic-logo">Mautic</div>
    %s
    <form class="form-group login-form" name="login" data-toggle="ajax" role="form" action="/oauth/v2/authorize_login_check" method="post">
        <div class="input-group mb-md">
            <label for="username" class="sr-only">Username or email</label>
            <input type="text" id="username" name="_username" class="form-control input-lg" value="" required autofocus placeholder="Username or email" />
        </div>
        <div class="input-group mb-md">
            <label for="password" class="sr-only">Password:</label>
            <input type="password" id="password" name="_password" class="form-control input-lg" required placeholder="Password" />
        </div>
        <button class="btn btn-lg btn-primary btn-block" type="submit">login</button>
    </form>
</div>
<footer>Copyright %d Mautic. All Rights Reserved.</footer>
</body>
</html>
`

// consentHead takes the application name.
const consentHead = `<!DOCTYPE html>
<html>
<head>
    <meta charset="UTF-8" />
    <title>Mautic</title>
</head>
<body>
<div class="container">
    <div class="mautic-logo">Mautic</div>
    <h4>The application %%%s%% would like to connect to your account.</h4>
    <form class="form-login text-center" role="form" name="fos_oauth_server_authorize_form" action="/oauth/v2/authorize" method="post">
        <input type="submit" class="btn btn-primary btn-accept" name="accepted" value="Accept" />
        <input type="submit" class="btn btn-danger btn-deny" name="rejected" value="Deny" />
`

// consentInput takes the field key, the field name and the value attribute.
const consentInput = `        <input type="hidden" id="fos_oauth_server_authorize_form_%s" name="%s" autocomplete="false"%s />
`

// consentTail takes the copyright year.
const consentTail = `    </form>
</div>
<footer>Copyright %d Mautic. All Rights Reserved.</footer>
</body>
</html>
`

"""Single sign-on: ssobridge as the site that signs employees in and issues SmarterTrack's ASP.NET cookie.

    cookie.py     the forms authentication cookie: MachineKey, Ticket, issue_cookie, read_cookie, CookieRefused
    ticket.py     FormsAuthenticationTicket's binary layout (ASP.NET's FormsAuthenticationTicketSerializer)
    commands.py   `ssobridge sso decode-cookie` and `ssobridge sso import-machinekey`
    web.py        the sign-in site: /sso/login (Negotiate or the form) and /sso/logout; app.py routes /sso/ here
    rules.py      where a ReturnUrl may lead, the CSRF token, the Set-Cookie values
"""

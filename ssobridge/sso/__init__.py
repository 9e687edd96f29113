"""Single sign-on for SmarterTrack: the sign-in cookie, Kerberos, the sign-in page (issue 12)."""

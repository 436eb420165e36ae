from tests.auth.conftest import AuthEnv, new_email


async def test_signup_and_password_login(auth: AuthEnv) -> None:
    email = new_email()
    session = await auth.signup(email)
    assert session["user"]["email"] == email
    r = await auth.post("/token?grant_type=password", {"email": email, "password": "secret-pass-1"})
    assert r.status_code == 200, r.text

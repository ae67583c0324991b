#!/usr/bin/python3
"""A real SMTP server for qu's tests (Debian's python3-aiosmtpd).

Stores every message as a file in MAILDIR and prints READY when listening.
Options: --port N --maildir DIR [--tls CERT KEY] (offer STARTTLS and require
it before MAIL) [--auth USER:PASS] (require AUTH PLAIN/LOGIN).
"""
import argparse
import os
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

p = argparse.ArgumentParser()
p.add_argument("--host", default="127.0.0.1")
p.add_argument("--port", type=int, required=True)
p.add_argument("--maildir", required=True)
p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
p.add_argument("--auth")
a = p.parse_args()
os.makedirs(a.maildir, exist_ok=True)


class Store:
    n = 0

    async def handle_DATA(self, server, session, envelope):
        Store.n += 1
        path = os.path.join(a.maildir, "%d-%d.eml" % (time.time_ns(), Store.n))
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(path + ".tmp", path)
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    user, password = a.auth.split(":", 1)
    ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user and auth_data.password.decode() == password
    if ok:
        return AuthResult(success=True)
    return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")


kwargs = {}
if a.tls:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(a.tls[0], a.tls[1])
    kwargs["tls_context"] = ctx
    kwargs["require_starttls"] = True
if a.auth:
    kwargs["authenticator"] = authenticator
    kwargs["auth_required"] = True
    kwargs["auth_require_tls"] = bool(a.tls)
c = Controller(Store(), hostname=a.host, port=a.port, **kwargs)
c.start()
print("READY", flush=True)
try:
    while True:
        time.sleep(3600)
finally:
    c.stop()

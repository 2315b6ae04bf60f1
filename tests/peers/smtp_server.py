"""A real SMTP server (aiosmtpd) for the email sink's integration tests.

Listens on 127.0.0.1 on a free port. Prints {"port": N}, then READY, then one JSON line per
message accepted: the envelope, whether the session was encrypted, who logged in, the raw
message, and its parts as Python's email package decodes them (an independent MIME parser).

  --cert FILE --key FILE   offer STARTTLS and require it before MAIL
  --implicit-tls           TLS from the first byte instead (needs --cert and --key)
  --auth-user U --auth-password P
                           require AUTH (PLAIN or LOGIN) with these credentials; over TLS
                           only when TLS is configured
  --reject-rcpt ADDR       answer 550 (permanent) to RCPT TO:<ADDR>
  --defer-rcpt ADDR        answer 451 (try again later) to RCPT TO:<ADDR>
"""

import argparse
import asyncio
import email
import email.policy
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth-user")
    parser.add_argument("--auth-password")
    parser.add_argument("--reject-rcpt", action="append", default=[])
    parser.add_argument("--defer-rcpt", action="append", default=[])
    args = parser.parse_args()

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    elif args.implicit_tls:
        sys.exit("--implicit-tls needs --cert and --key")

    asyncio.run(serve(args, context))


class Handler:
    def __init__(self, reject, defer):
        self.reject = {address.lower() for address in reject}
        self.defer = {address.lower() for address in defer}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: recipient rejected" % address
        if address.lower() in self.defer:
            return "451 4.3.0 <%s>: try again later" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        message = email.message_from_bytes(data, policy=email.policy.default)
        parts = [
            {"content_type": part.get_content_type(), "text": part.get_content()}
            for part in message.walk()
            if not part.is_multipart()
        ]
        # STARTTLS records the TLS details in session.ssl; implicit TLS is the transport's.
        encrypted = session.ssl is not None or server.transport.get_extra_info("sslcontext") is not None
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": encrypted,
            "auth_user": getattr(session, "auth_user", None),
            "content_type": message.get_content_type(),
            "subject": str(message["Subject"]),
            "parts": parts,
            "data": data.decode("utf-8", "replace"),
        }
        print(json.dumps(record), flush=True)
        return "250 Message accepted"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        if ok:
            session.auth_user = user
        return AuthResult(success=ok, handled=False)

    return check


async def serve(args, context):
    handler = Handler(args.reject_rcpt, args.defer_rcpt)
    kwargs = {}
    if context is not None and not args.implicit_tls:
        kwargs.update(tls_context=context, require_starttls=True)
    if args.auth_user is not None:
        kwargs.update(
            authenticator=authenticator(args.auth_user, args.auth_password or ""),
            auth_required=True,
            # aiosmtpd only counts STARTTLS as TLS; an implicit-TLS session is encrypted already.
            auth_require_tls=context is not None and not args.implicit_tls,
        )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="localhost", **kwargs),
        host="127.0.0.1",
        port=0,
        ssl=context if args.implicit_tls else None,
    )
    print(json.dumps({"port": server.sockets[0].getsockname()[1]}), flush=True)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    main()

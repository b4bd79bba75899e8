"""A real SMTP server for trawl's tests (aiosmtpd), delivering into a Maildir.

argv: PORT MAILDIR FLAG_DIR [CERT KEY]. With CERT and KEY the server offers STARTTLS (not
required); every delivered message says whether it came over TLS in `X-TLS`. Recipients whose local part starts with `refuse` get a 550 (a
permanent refusal, as for an unknown mailbox); while FLAG_DIR/busy exists every recipient gets a
451 (try again later). Everything else is delivered, with the envelope recipients added as
`X-RcptTo`.
"""
import email
import mailbox
import os
import ssl
import sys
import threading

from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, maildir, flags):
        self.box = mailbox.Maildir(maildir, create=True)
        self.flags = flags

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if os.path.exists(os.path.join(self.flags, "busy")):
            return "451 4.3.0 Busy, try again later"
        if address.split("@")[0].startswith("refuse"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content)
        message["X-RcptTo"] = ",".join(envelope.rcpt_tos)
        message["X-TLS"] = "yes" if session.ssl else "no"
        self.box.add(message)
        return "250 2.0.0 Message accepted for delivery"


def main():
    port, maildir, flags = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    options = {}
    if len(sys.argv) > 5:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        options = {"tls_context": context, "require_starttls": False}
    controller = Controller(Handler(maildir, flags), hostname="127.0.0.1", port=port, **options)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()

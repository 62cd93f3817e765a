"""Accounts and API keys of a print service, from the command line (the service may be
running):

  python -m tools.printservice.admin --data DIR accounts
  python -m tools.printservice.admin --data DIR add-account EMAIL
  python -m tools.printservice.admin --data DIR add-key EMAIL NAME [--out FILE]
  python -m tools.printservice.admin --data DIR keys EMAIL
  python -m tools.printservice.admin --data DIR revoke-key EMAIL KEY_ID
  python -m tools.printservice.admin --data DIR invite EMAIL [--url https://HOST:8443]
  python -m tools.printservice.admin --data DIR set-password EMAIL      (asks, or reads stdin)

A new key is printed once (or written to --out, 0600) and never stored: only its hash is.
An invitation is a sign-up link for the web console, valid once for 7 days; for an account
that exists without a password (the first one), it sets that account's password."""
import argparse
import getpass
import os
import sys
import time

from tools.printservice.accounts import AccountError, Accounts
from tools.printservice.logins import LoginError, Logins
from tools.printservice.store import Store, data_dir_url


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.printservice.admin", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="the service's data directory")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("accounts")
    sub.add_parser("add-account").add_argument("email")
    p = sub.add_parser("add-key")
    p.add_argument("email")
    p.add_argument("name")
    p.add_argument("--out", help="write the key to this file (0600) instead of printing it")
    sub.add_parser("keys").add_argument("email")
    p = sub.add_parser("revoke-key")
    p.add_argument("email")
    p.add_argument("key_id")
    p = sub.add_parser("invite")
    p.add_argument("email")
    p.add_argument("--url", default="https://localhost:8443", help="the service's address, for the link")
    sub.add_parser("set-password").add_argument("email")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.data):
        print("error: no data directory %s" % args.data, file=sys.stderr)
        return 1
    try:
        store = Store(data_dir_url(args.data))
    except (ValueError, OSError) as e:
        print("error: cannot open the database: %s" % e, file=sys.stderr)
        return 1
    accounts = Accounts(store)
    try:
        if args.cmd == "accounts":
            for email in accounts.emails():
                print(email)
        elif args.cmd == "add-account":
            print("account %s made; give it a key with add-key" % accounts.create(args.email))
        elif args.cmd == "add-key":
            key_id, key = accounts.create_key(args.email, args.name)
            if args.out:
                fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(key + "\n")
                print("key %s written to %s" % (key_id, args.out))
            else:
                print("key %s: %s" % (key_id, key))
                print("(shown once: only its hash is kept)", file=sys.stderr)
        elif args.cmd == "keys":
            for k in accounts.keys(args.email):
                print("%s  %-24s made %s%s" % (k["id"], k["name"], _when(k["created_ms"]),
                                              "  revoked " + _when(k["revoked_ms"]) if k["revoked_ms"] else ""))
        elif args.cmd == "revoke-key":
            accounts.revoke_key(args.email, args.key_id)
            print("key %s revoked" % args.key_id)
        elif args.cmd == "invite":
            token = Logins(store, accounts).invite("admin", args.email)
            print("%s/console/signup?invite=%s" % (args.url.rstrip("/"), token))
            print("(valid once, for 7 days: send it to %s)" % args.email, file=sys.stderr)
        elif args.cmd == "set-password":
            Logins(store, accounts).set_password(args.email, _new_password())
            print("password of %s set; its sessions ended" % args.email)
    except (AccountError, LoginError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    except FileExistsError as e:
        print("error: %s exists already" % e.filename, file=sys.stderr)
        return 1
    finally:
        store.close()
    return 0


def _new_password():
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise LoginError("the two passwords differ")
    return first


def _when(ms):
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) if ms else "before 0003"


if __name__ == "__main__":
    sys.exit(main())

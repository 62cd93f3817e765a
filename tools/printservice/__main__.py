"""Run the print service:  python -m tools.printservice --data DIR [options]"""
import argparse

from tools.printservice.server import Service
from tools.hostrun import serve_until_signalled


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.printservice",
                                 description="GCP 2.0 compatible print service (HTTPS; SQLite or PostgreSQL)")
    ap.add_argument("--data", required=True, help="data directory (database, certificates, keys; a "
                    "database.url file in it names a PostgreSQL database instead of SQLite there)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--public-host", help="host name printers use to reach the service (in URLs)")
    ap.add_argument("--https-port", type=int, default=8443)
    ap.add_argument("--public-port", type=int, help="the HTTPS port printers and apps reach, when "
                    "a load balancer in front of several replicas listens on another")
    ap.add_argument("--http-port", type=int, help="also serve plain HTTP on this port (off by default: "
                    "tokens and API keys would cross the network in the clear)")
    ap.add_argument("--client-id", default="cloudprint-agent", help="the OAuth client id printers use")
    ap.add_argument("--client-secret", help="the OAuth client secret (default: generated once)")
    ap.add_argument("--token-duration", type=int, default=899, help="seconds a claim code is valid")
    tls = ap.add_argument_group("TLS: by default the service's own CA (DATA/ca.der goes onto every printer)")
    tls.add_argument("--tls-cert", help="instead, this certificate chain (PEM, leaf first), e.g. from a public CA")
    tls.add_argument("--tls-key", help="its private key (PEM, unencrypted, readable by its owner only)")
    tls.add_argument("--tls-ca", help="the root CA the chain ends in (PEM or DER): every printer must hold it")
    ap.add_argument("--owner-email", help="first start only: the first account (default owner@example.com); "
                    "its API key goes to DATA/owner.key. More with python -m tools.printservice.admin")
    ap.add_argument("--open-signup", action="store_true", help="anyone who reaches the web console may "
                    "make an account (by default only people with an invitation)")
    push = ap.add_argument_group("push (see the README): by default an embedded MQTT broker")
    push.add_argument("--broker-port", type=int, default=1883, help="embedded broker: plain MQTT port")
    push.add_argument("--broker-tls-port", type=int, help="embedded broker: also mqtts on this port, "
                      "with the service's certificate")
    push.add_argument("--mqtt", metavar="URL", help="use this broker instead of the embedded one: "
                      "mqtt://HOST:PORT or mqtts://HOST:PORT (any MQTT 3.1.1 broker)")
    push.add_argument("--mqtt-ca", help="CA file (PEM) that an mqtts:// broker's certificate must chain to")
    push.add_argument("--mqtt-user", help="the service's user name on that broker")
    push.add_argument("--mqtt-password-file", help="file holding the service's password on that broker")
    push.add_argument("--mqtt-dynsec", action="store_true", help="the broker is mosquitto with its "
                      "dynamic-security plugin and the user above is its admin: the service creates "
                      "and deletes one broker client per printer")
    push.add_argument("--broker-auth-key-file", help="file holding a key: serve the HTTP endpoints a "
                      "clustered broker (RabbitMQ's auth_backend_http, EMQX's HTTP authn/authz) asks "
                      "who may connect, under <base>/broker/<key>/ (see the README)")
    push.add_argument("--no-push", action="store_true", help="no broker at all: printers only poll")
    args = ap.parse_args(argv)
    password = None
    if args.mqtt_password_file:
        with open(args.mqtt_password_file) as f:
            password = f.read().strip()
    auth_key = None
    if args.broker_auth_key_file:
        with open(args.broker_auth_key_file) as f:
            auth_key = f.read().strip()
        if len(auth_key) < 16:
            raise SystemExit("printservice: the broker auth key must be at least 16 characters")
    embedded = not (args.mqtt or args.no_push)
    try:
        svc = Service(args.data, args.host, args.http_port, args.https_port, args.client_id,
                      args.client_secret, args.token_duration, public_host=args.public_host,
                      mqtt_url=None if args.no_push else args.mqtt, mqtt_ca=args.mqtt_ca,
                      mqtt_user=args.mqtt_user, mqtt_password=password, mqtt_dynsec=args.mqtt_dynsec,
                      broker_port=args.broker_port if embedded else None,
                      broker_tls_port=args.broker_tls_port if embedded else None,
                      owner_email=args.owner_email, tls_cert=args.tls_cert, tls_key=args.tls_key,
                      tls_ca=args.tls_ca, open_signup=args.open_signup, broker_auth_key=auth_key,
                      public_port=args.public_port)
    except (OSError, RuntimeError, ValueError) as e:
        raise SystemExit("printservice: cannot start: %s" % e)
    svc.start()
    for url in (svc.https_url, svc.http_url):
        if url:
            print("printservice: %s/cloudprint" % url, flush=True)
    print("printservice: web console: %s/console/" % svc.https_url, flush=True)
    print("printservice: push broker for printers: %s" % (svc.mqtt_url or "none (printers poll)"), flush=True)
    print("printservice: CA for printers: %s" % svc.certs["ca_der"], flush=True)
    if svc.owner_key:
        print("printservice: owner API key in %s/owner.key" % args.data, flush=True)
    else:
        print("printservice: no live key in %s/owner.key; keys: python -m tools.printservice.admin"
              % args.data, flush=True)
    serve_until_signalled(svc.stop)


if __name__ == "__main__":
    main()

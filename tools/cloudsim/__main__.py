"""Run the simulated print service:  python -m tools.cloudsim --data DIR [options]"""
import argparse
import signal
import threading

from tools.cloudsim.server import Service


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m tools.cloudsim",
                                 description="GCP 2.0 compatible print service (HTTP + HTTPS, SQLite)")
    ap.add_argument("--data", required=True, help="data directory (database, certificates, keys)")
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on")
    ap.add_argument("--public-host", help="host name printers use to reach the service (in URLs)")
    ap.add_argument("--http-port", type=int, default=8080)
    ap.add_argument("--https-port", type=int, default=8443)
    ap.add_argument("--client-id", default="cloudprint-agent", help="the OAuth client id printers use")
    ap.add_argument("--client-secret", help="the OAuth client secret (default: generated once)")
    ap.add_argument("--token-duration", type=int, default=899, help="seconds a claim code is valid")
    ap.add_argument("--mqtt", metavar="URL", help="publish push hints to this broker: mqtt://HOST:PORT "
                    "or mqtts://HOST:PORT (any MQTT 3.1.1 broker; see the README)")
    ap.add_argument("--mqtt-ca", help="CA file (PEM) that an mqtts:// broker's certificate must chain to")
    args = ap.parse_args(argv)
    svc = Service(args.data, args.host, args.http_port, args.https_port, args.client_id,
                  args.client_secret, args.token_duration, public_host=args.public_host,
                  mqtt_url=args.mqtt, mqtt_ca=args.mqtt_ca)
    svc.start()
    print("cloudsim: %s/cloudprint and %s/cloudprint" % (svc.http_url, svc.https_url), flush=True)
    print("cloudsim: CA for printers: %s; owner API key in %s/owner.key"
          % (svc.certs["ca_der"], args.data), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    signal.signal(signal.SIGINT, lambda *a: done.set())
    done.wait()
    svc.stop()


if __name__ == "__main__":
    main()

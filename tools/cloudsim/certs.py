"""The service's own CA and server certificate, made on first run (EC P-256, which the
MicroPython mbedTLS build verifies). The agent gets the CA as DER."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_DER = "ca.der"
CA_PEM = "ca.pem"
SERVER_PEM = "server.pem"
SERVER_KEY = "server.key"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def make_ca(cn, days=3650):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert, hostnames, days=825):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans = []
    for h in hostnames:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (x509.CertificateBuilder().subject_name(_name(hostnames[0])).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def ensure(data_dir, hostnames=("localhost", "127.0.0.1")):
    """Create the CA and server certificate in data_dir unless they exist; the paths."""
    os.makedirs(data_dir, exist_ok=True)
    paths = {k: os.path.join(data_dir, v) for k, v in
             (("ca_der", CA_DER), ("ca_pem", CA_PEM), ("cert", SERVER_PEM), ("key", SERVER_KEY))}
    if not all(os.path.exists(p) for p in paths.values()):
        ca_key, ca_cert = make_ca("cloudsim CA")
        key, cert = make_server_cert(ca_key, ca_cert, list(hostnames))
        _write(paths["ca_der"], ca_cert.public_bytes(serialization.Encoding.DER))
        _write(paths["ca_pem"], ca_cert.public_bytes(serialization.Encoding.PEM))
        _write(paths["cert"], cert.public_bytes(serialization.Encoding.PEM)
               + ca_cert.public_bytes(serialization.Encoding.PEM))
        _write(paths["key"], key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()), private=True)
    return paths

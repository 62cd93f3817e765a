"""The service's TLS certificate: its own CA and server certificate, made on first run
(EC P-256, which the MicroPython mbedTLS build verifies), or an operator's own certificate
and key (from a public CA, say), checked as a printer will check it. Either way the
printers get the root they must trust as DER."""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

CA_DER = "ca.der"
CA_PEM = "ca.pem"
SERVER_PEM = "server.pem"
SERVER_KEY = "server.key"
CA_KEY = "ca.key"
OPERATOR_CA_DER = "printer-ca.der"  # the root of an operator's certificate, for the printers
OPERATOR_CA_PEM = "printer-ca.pem"


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


def _covers(cert_path, hostnames):
    """True when the certificate at cert_path names every one of hostnames."""
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    have = {str(v) for v in sans.get_values_for_type(x509.IPAddress)} | set(sans.get_values_for_type(x509.DNSName))
    return set(hostnames) <= have


def ensure(data_dir, hostnames=("localhost", "127.0.0.1")):
    """The CA (its key kept, 0600, so certificates can be reissued) and a server
    certificate naming every one of hostnames, made in data_dir when missing or when the
    names changed; the paths."""
    os.makedirs(data_dir, exist_ok=True)
    paths = {k: os.path.join(data_dir, v) for k, v in
             (("ca_der", CA_DER), ("ca_pem", CA_PEM), ("ca_key", CA_KEY), ("cert", SERVER_PEM),
              ("key", SERVER_KEY))}
    hostnames = list(dict.fromkeys(hostnames))
    if not os.path.exists(paths["ca_der"]):
        ca_key, ca_cert = make_ca("print service CA")
        _write(paths["ca_der"], ca_cert.public_bytes(serialization.Encoding.DER))
        _write(paths["ca_pem"], ca_cert.public_bytes(serialization.Encoding.PEM))
        _write(paths["ca_key"], _key_pem(ca_key), private=True)
    elif os.path.exists(paths["cert"]) and os.path.exists(paths["key"]) and _covers(paths["cert"], hostnames):
        return paths
    if not os.path.exists(paths["ca_key"]):
        raise ValueError("the server certificate in %s must name %s, but the CA key was not kept "
                         "(an older version made it): remove %s, %s and %s there for a new CA, then "
                         "give every printer the new %s" % (data_dir, ", ".join(hostnames), CA_DER, CA_PEM,
                                                           SERVER_PEM, CA_DER))
    with open(paths["ca_key"], "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    with open(paths["ca_pem"], "rb") as f:
        ca_cert = x509.load_pem_x509_certificate(f.read())
    key, cert = make_server_cert(ca_key, ca_cert, hostnames)
    _write(paths["key"], _key_pem(key), private=True)
    _write(paths["cert"], cert.public_bytes(serialization.Encoding.PEM)
           + ca_cert.public_bytes(serialization.Encoding.PEM))
    return paths


def operator(data_dir, cert_file, key_file, ca_file, hostnames):
    """An operator's own certificate (chain PEM) and key instead of ours: checked as a
    printer will check it, against ca_file (the root, PEM or DER, that every printer must
    then hold; written to DATA as printer-ca.der and .pem for provisioning); the paths.
    ValueError, naming what is wrong, before the service listens."""
    try:
        with open(cert_file, "rb") as f:
            chain = x509.load_pem_x509_certificates(f.read())
        with open(key_file, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        with open(ca_file, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ValueError("%s: %s" % (e.filename, e.strerror))
    except (ValueError, TypeError) as e:
        raise ValueError("%s or %s is not a PEM certificate chain and unencrypted PEM key: %s"
                         % (cert_file, key_file, e))
    if os.stat(key_file).st_mode & 0o077:
        raise ValueError("%s is readable by others: chmod 600 it" % key_file)
    try:
        root = (x509.load_pem_x509_certificate(raw) if raw.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(raw))
    except ValueError as e:
        raise ValueError("%s is not a certificate (PEM or DER): %s" % (ca_file, e))
    try:
        is_ca = root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise ValueError("%s is not a CA certificate: give the root the chain ends in (a printer that "
                         "trusted this certificate itself would refuse the next renewal)" % ca_file)
    leaf = chain[0]
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise ValueError("the key in %s is not the key of the certificate in %s" % (key_file, cert_file))
    verifier = PolicyBuilder().store(Store([root]))
    for name in hostnames:
        try:
            subject = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            subject = x509.DNSName(name)
        try:
            verifier.build_server_verifier(subject).verify(leaf, chain[1:])
        except VerificationError as e:
            raise ValueError("printers would refuse %s for %s: %s" % (cert_file, name, e))
    paths = {"cert": cert_file, "key": key_file, "ca_der": os.path.join(data_dir, OPERATOR_CA_DER),
             "ca_pem": os.path.join(data_dir, OPERATOR_CA_PEM)}
    _write(paths["ca_der"], root.public_bytes(serialization.Encoding.DER))
    _write(paths["ca_pem"], root.public_bytes(serialization.Encoding.PEM))
    return paths


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())

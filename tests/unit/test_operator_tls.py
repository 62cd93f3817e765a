"""An operator's own certificate (as a public CA issues one: root, intermediate, leaf)
instead of the service's CA: checked before the service listens, served, and handed to
printers as the root they must hold."""
import datetime
import ipaddress
import os
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tools.printservice.server import Service


def _cert(subject, key, issuer=None, issuer_key=None, ca=False, names=(), days=90):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_cert_name = issuer.subject if issuer is not None else name
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_cert_name)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             (issuer_key or key).public_key()), critical=False)
         .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=ca, crl_sign=ca,
                                      content_commitment=False, key_encipherment=False, data_encipherment=False,
                                      key_agreement=False, encipher_only=False, decipher_only=False), critical=True))
    if not ca:
        b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
             .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(n))
                                                         if n[0].isdigit() else x509.DNSName(n) for n in names]),
                            critical=False))
    return b.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path):
    """A root, an intermediate and a leaf for 127.0.0.1: the files an operator would have."""
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _cert("Operator Root", root_key, ca=True, days=3650)
    mid = _cert("Operator Issuing CA", mid_key, root, root_key, ca=True, days=1000)
    leaf = _cert("print.example.test", leaf_key, mid, mid_key, names=("127.0.0.1", "print.example.test"))
    pem = serialization.Encoding.PEM
    files = {"chain": tmp_path / "fullchain.pem", "key": tmp_path / "privkey.pem", "root": tmp_path / "root.der",
             "other_key": tmp_path / "other.pem"}
    files["chain"].write_bytes(leaf.public_bytes(pem) + mid.public_bytes(pem))
    for path, k in (("key", leaf_key), ("other_key", mid_key)):
        files[path].write_bytes(k.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        os.chmod(files[path], 0o600)
    files["root"].write_bytes(root.public_bytes(serialization.Encoding.DER))
    files["leaf_only"] = tmp_path / "leaf.pem"
    files["leaf_only"].write_bytes(leaf.public_bytes(pem))
    files["root_pem"] = tmp_path / "root.pem"
    files["root_pem"].write_bytes(root.public_bytes(pem))
    return {k: str(v) for k, v in files.items()}


def test_the_operators_certificate_is_served_and_its_root_handed_to_printers(tmp_path, pki):
    data = tmp_path / "svc"
    with Service(str(data), http_port=None, log=lambda m: None, tls_cert=pki["chain"], tls_key=pki["key"],
                 tls_ca=pki["root"]) as svc:
        assert open(svc.certs["ca_der"], "rb").read() == open(pki["root"], "rb").read()
        ctx = ssl.create_default_context(cafile=pki["root_pem"])
        host, port = svc.https_url.rsplit("/", 1)[1].split(":")
        with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host) as t:
            t.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert t.recv(100).startswith(b"HTTP/1.1 200")
    assert not os.path.exists(data / "ca.key") and not os.path.exists(data / "ca.der")  # no CA of ours


@pytest.mark.parametrize("change, message", [
    ({"tls_key": "other_key"}, "is not the key of the certificate"),
    ({"public_host": "elsewhere.example.test"}, "printers would refuse"),
    ({"tls_ca": "chain"}, "not a CA certificate"),  # the leaf itself, which the next renewal replaces
    ({"tls_cert": "leaf_only"}, "printers would refuse"),  # the intermediate left out
    ({"tls_ca": None}, "needs all three"),
    ({"tls_cert": "missing"}, "No such file"),
])
def test_a_certificate_printers_would_refuse_stops_the_start_with_the_reason(tmp_path, pki, change, message):
    args = {"tls_cert": "chain", "tls_key": "key", "tls_ca": "root", "public_host": None}
    args.update(change)
    files = dict(pki, missing=str(tmp_path / "nope.pem"))
    kwargs = {k: (files[v] if k != "public_host" and v else v) for k, v in args.items()}
    with pytest.raises(ValueError, match=message):
        Service(str(tmp_path / "svc"), log=lambda m: None, **kwargs)


def test_a_key_others_can_read_is_refused(tmp_path, pki):
    os.chmod(pki["key"], 0o644)
    with pytest.raises(ValueError, match="readable by others"):
        Service(str(tmp_path / "svc"), log=lambda m: None, tls_cert=pki["chain"], tls_key=pki["key"],
                tls_ca=pki["root"])

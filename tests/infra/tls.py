"""A throw-away certificate authority and a server certificate for the TLS tests.

`python -m tests.infra.tls FOLDER` writes ca.pem, cert.pem (for localhost and
127.0.0.1, signed by the CA), key.pem and other-key.pem (a key that matches
no certificate) into FOLDER. Nothing of it is kept: each test run makes its own.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    encoding, key_format = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, key_format, serialization.NoEncryption())


def _certificate(
    subject: str, public_key: ec.EllipticCurvePublicKey, issuer: str, signing_key: ec.EllipticCurvePrivateKey, ca: bool
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def write_test_pki(folder: Path) -> None:
    """Write ca.pem, cert.pem, key.pem and other-key.pem into folder (created if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("mqbox test CA", ca_key.public_key(), "mqbox test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("localhost", server_key.public_key(), "mqbox test CA", ca_key, ca=False)

    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "cert.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    for name, key in (("key.pem", server_key), ("other-key.pem", ec.generate_private_key(ec.SECP256R1()))):
        path = folder / name
        path.write_bytes(_key_pem(key))
        path.chmod(0o600)


def main(argv: list[str] | None = None) -> int:
    """Write the test PKI into the folder given on the command line."""
    parser = argparse.ArgumentParser(description="Make a throw-away CA and server certificate for the TLS tests.")
    parser.add_argument("folder", type=Path, help="folder for ca.pem, cert.pem, key.pem and other-key.pem")
    write_test_pki(parser.parse_args(argv).folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())

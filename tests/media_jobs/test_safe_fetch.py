"""Tests for media_jobs.safe_fetch (no Django, no outside network).

Async code is driven with asyncio.run() (pytest-asyncio is not installed).
HTTPS traffic goes through httpx.MockTransport; DNS through injected resolvers.
"""

from __future__ import annotations

import asyncio
import base64
import io
import socket

import httpx
import pytest
from PIL import Image

from media_jobs.safe_fetch import FetchRefused, Media, fetch_media, is_public_address

PUBLIC_IP = "93.184.216.34"


def png_bytes(size=(4, 4), color=(255, 0, 0, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", size, color).save(buf, format="PNG")
    return buf.getvalue()


MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00" * 32
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00" * 32
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm" + b"\x00" * 32
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1" + b"\x00" * 32


def data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def run(coro):
    return asyncio.run(coro)


def refused(coro) -> FetchRefused:
    with pytest.raises(FetchRefused) as info:
        run(coro)
    return info.value


def resolver_for(mapping: dict[str, list[str]]):
    async def resolve(host, port):
        if host not in mapping:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        # getaddrinfo-shaped tuples, like loop.getaddrinfo returns
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in mapping[host]]

    return resolve


def mock_client(handler, log: list | None = None) -> httpx.AsyncClient:
    def wrapped(request: httpx.Request):
        if log is not None:
            log.append(request)
        return handler(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(wrapped), follow_redirects=False)


def exploding_client() -> httpx.AsyncClient:
    def handler(request):  # pragma: no cover - must never be reached
        raise AssertionError(f"connection attempted to {request.url}")

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


# ------------------------------------------------------------ data / b64 --
def test_data_uri_png_accepted():
    media = run(fetch_media(data_uri("image/png", png_bytes()), field="input_images"))
    assert media == Media(png_bytes(), "image/png", "data_uri")


def test_data_uri_mime_reported_from_bytes_not_declaration():
    media = run(fetch_media(data_uri("image/jpeg", png_bytes()), field="input_images"))
    assert media.mime_type == "image/png"


def test_data_uri_text_plain_refused():
    err = refused(fetch_media(data_uri("text/plain", b"hello"), field="input_images"))
    assert err.code == "url_bad_content" and err.field == "input_images"


def test_data_uri_png_with_garbage_bytes_refused():
    err = refused(fetch_media(data_uri("image/png", b"not really a png" * 4), field="img"))
    assert err.code == "url_bad_content"


def test_data_uri_truncated_png_refused():
    err = refused(fetch_media(data_uri("image/png", png_bytes((64, 64))[:40]), field="img"))
    assert err.code == "url_bad_content"


@pytest.mark.parametrize(
    "uri",
    [
        "data:image/png,rawpixels",
        "data:image/png;base64",
        "data:;base64,AAAA",
        "data:image/png;base64,@@@###",
    ],
)
def test_malformed_data_uri(uri):
    err = refused(fetch_media(uri, field="img"))
    assert err.code == "invalid_data_uri"


def test_data_uri_too_large():
    err = refused(fetch_media(data_uri("image/png", png_bytes((64, 64))), field="img", max_bytes=50))
    assert err.code == "url_too_large"


def test_bare_base64_image():
    media = run(fetch_media(base64.b64encode(png_bytes()).decode(), field="input_images"))
    assert media.source == "base64" and media.mime_type == "image/png"
    assert media.data == png_bytes()


def test_bare_base64_invalid():
    err = refused(fetch_media("this is *not* base64!", field="input_images"))
    assert err.code == "invalid_base64"


def test_bare_base64_not_an_image():
    err = refused(fetch_media(base64.b64encode(b"plain text here").decode(), field="x"))
    assert err.code == "url_bad_content"


def test_bare_base64_not_allowed_for_video():
    err = refused(fetch_media(base64.b64encode(MP4).decode(), field="video_url", kind="video"))
    assert err.code == "url_scheme"


@pytest.mark.parametrize("blob, mime", [(MP4, "video/mp4"), (MOV, "video/quicktime"), (WEBM, "video/webm")])
def test_video_data_uri_sniffed(blob, mime):
    media = run(fetch_media(data_uri("video/mp4", blob), field="video_url", kind="video"))
    assert media.mime_type == mime and media.source == "data_uri"


@pytest.mark.parametrize(
    "uri",
    [
        data_uri("image/png", png_bytes()),  # wrong family
        data_uri("video/mp4", png_bytes()),  # wrong bytes
        data_uri("video/mp4", AVIF),
    ],
)  # HEIF image brand
def test_video_wrong_content_refused(uri):
    err = refused(fetch_media(uri, field="video_url", kind="video"))
    assert err.code == "url_bad_content"


# --------------------------------------------------------------- schemes --
@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/a.png",
        "file:///etc/passwd",
        "ftp://example.com/a.png",
        "gopher://x/",
        "HTTP://x/a.png",
        "javascript:alert(1)",
    ],
)
def test_non_https_schemes_refused(url):
    err = refused(
        fetch_media(
            url,
            field="image_url",
            client=exploding_client(),
            resolver=resolver_for({"example.com": [PUBLIC_IP]}),
        )
    )
    assert err.code == "url_scheme" and err.field == "image_url"


def test_credentials_in_url_refused():
    err = refused(
        fetch_media(
            "https://user:pw@cdn.example.com/a.png",
            field="img",
            client=exploding_client(),
            resolver=resolver_for({"cdn.example.com": [PUBLIC_IP]}),
        )
    )
    assert err.code == "url_scheme"


# ------------------------------------------------------------- addresses --
@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.0.0.5",
        "169.254.169.254",
        "::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "172.16.3.4",
        "192.168.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "224.0.0.1",
        "239.1.2.3",
        "240.0.0.1",
        "255.255.255.255",
        "2002:7f00:1::1",
        "64:ff9b::a00:5",
        "2001:db8::1",
    ],
)
def test_private_resolution_refused(ip):
    err = refused(
        fetch_media(
            "https://evil.example/a.png",
            field="input_images",
            client=exploding_client(),
            resolver=resolver_for({"evil.example": [ip]}),
        )
    )
    assert err.code == "url_private_address"


def test_any_private_address_among_many_refused():
    err = refused(
        fetch_media(
            "https://evil.example/a.png",
            field="img",
            client=exploding_client(),
            resolver=resolver_for({"evil.example": [PUBLIC_IP, "10.0.0.5"]}),
        )
    )
    assert err.code == "url_private_address"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/a.png",
        "https://[::1]/a.png",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/a.png",
    ],
)
def test_ip_literal_hosts_refused(url):
    def no_dns(host, port):  # pragma: no cover - literals must not be resolved
        raise AssertionError("resolver called for an IP literal")

    err = refused(fetch_media(url, field="img", client=exploding_client(), resolver=no_dns))
    assert err.code == "url_private_address"


def test_localhost_with_default_resolver_refused():
    # Uses the real loop.getaddrinfo, which answers "localhost" locally (no network).
    err = refused(fetch_media("https://localhost/a.png", field="img", client=exploding_client()))
    assert err.code in ("url_private_address", "url_unresolvable")


@pytest.mark.parametrize("mapping", [{}, {"nowhere.example": []}])
def test_unresolvable(mapping):
    err = refused(
        fetch_media(
            "https://nowhere.example/a.png",
            field="img",
            client=exploding_client(),
            resolver=resolver_for(mapping),
        )
    )
    assert err.code == "url_unresolvable"


@pytest.mark.parametrize(
    "ip, expected",
    [
        (PUBLIC_IP, True),
        ("2606:4700::1111", True),
        ("8.8.8.8", True),
        ("127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("not an ip", False),
        ("100.127.255.255", False),
    ],
)
def test_is_public_address(ip, expected):
    assert is_public_address(ip) is expected


# ----------------------------------------------------------------- https --
PUBLIC_DNS = {
    "cdn.example.com": [PUBLIC_IP],
    "other.example.net": ["151.101.1.69"],
    "good.example.org": ["8.8.4.4"],
    "internal.example": ["10.0.0.5"],
    "metadata.example": ["169.254.169.254"],
}


def test_https_fetch_pins_ip_and_sends_host_and_sni():
    log = []

    def handler(request):
        return httpx.Response(200, content=png_bytes(), headers={"content-type": "text/html"})

    media = run(
        fetch_media(
            "https://cdn.example.com:8443/img/a.png?sig=1",
            field="img",
            client=mock_client(handler, log),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert media == Media(png_bytes(), "image/png", "https")  # header not trusted
    (req,) = log
    assert req.url.host == PUBLIC_IP and req.url.port == 8443
    assert req.url.raw_path == b"/img/a.png?sig=1"
    assert req.headers["host"] == "cdn.example.com:8443"
    assert req.extensions["sni_hostname"] == "cdn.example.com"
    assert req.headers["accept-encoding"] == "identity"


def test_https_ipv6_pin():
    log = []
    media = run(
        fetch_media(
            "https://v6.example/a.png",
            field="img",
            client=mock_client(lambda r: httpx.Response(200, content=png_bytes()), log),
            resolver=resolver_for({"v6.example": ["2606:4700::1111"]}),
        )
    )
    assert media.mime_type == "image/png"
    assert log[0].url.host == "2606:4700::1111" and log[0].headers["host"] == "v6.example"


def redirecting(chain: dict[str, str], final=None):
    """Handler: Host header -> Location; hosts not in chain serve ``final``."""

    def handler(request):
        host = request.headers["host"]
        if host in chain:
            return httpx.Response(302, headers={"location": chain[host]})
        return httpx.Response(200, content=final if final is not None else png_bytes())

    return handler


def test_redirect_to_private_address_refused():
    log = []
    handler = redirecting({"cdn.example.com": "https://internal.example/secret"})
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(handler, log),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_private_address"
    assert len(log) == 1  # the private hop was never requested


def test_redirect_to_metadata_ip_literal_refused():
    handler = redirecting({"cdn.example.com": "https://169.254.169.254/latest/meta-data/"})
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(handler),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_private_address"


def test_redirect_to_http_refused():
    handler = redirecting({"cdn.example.com": "http://other.example.net/a.png"})
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(handler),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_scheme"


def test_redirects_followed_and_each_hop_pinned():
    log = []
    handler = redirecting(
        {
            "cdn.example.com": "https://other.example.net/b.png",
            "other.example.net": "/c.png?x=1",  # relative: same host
        }
    )

    def chained(request):
        if request.headers["host"] == "other.example.net" and request.url.path == "/c.png":
            return httpx.Response(302, headers={"location": "https://good.example.org/d.png"})
        return handler(request)

    media = run(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(chained, log),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert media.mime_type == "image/png"
    assert [(r.url.host, r.headers["host"], r.url.raw_path) for r in log] == [
        (PUBLIC_IP, "cdn.example.com", b"/a.png"),
        ("151.101.1.69", "other.example.net", b"/b.png"),
        ("151.101.1.69", "other.example.net", b"/c.png?x=1"),
        ("8.8.4.4", "good.example.org", b"/d.png"),
    ]
    assert [r.extensions["sni_hostname"] for r in log][-1] == "good.example.org"


def test_too_many_redirects():
    def loop_handler(request):
        n = int(request.url.params.get("n", "0"))
        return httpx.Response(302, headers={"location": f"/a.png?n={n + 1}"})

    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(loop_handler),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_too_many_redirects"


def test_redirect_without_location():
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(lambda r: httpx.Response(301)),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_http_error"


def test_http_error_status():
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(lambda r: httpx.Response(404)),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_http_error"


def test_transport_error_mapped():
    def boom(request):
        raise httpx.ConnectError("refused", request=request)

    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(boom),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_http_error"


def test_size_cap_declared_content_length():
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            max_bytes=1000,
            client=mock_client(lambda r: httpx.Response(200, content=b"x" * 5000)),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_too_large"


def test_size_cap_streamed_without_content_length():
    produced = []

    async def body():
        for _ in range(1000):  # would be 64 MB if fully read
            produced.append(1)
            yield b"\0" * 65536

    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            max_bytes=200_000,
            client=mock_client(lambda r: httpx.Response(200, content=body())),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_too_large"
    assert len(produced) <= 5  # aborted early, not buffered to the end


def test_non_image_bytes_refused():
    html = b"<html><body>definitely an image</body></html>"
    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(
                lambda r: httpx.Response(200, content=html, headers={"content-type": "image/png"})
            ),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_bad_content"


def test_https_video():
    media = run(
        fetch_media(
            "https://cdn.example.com/v.mp4",
            field="video_url",
            kind="video",
            client=mock_client(lambda r: httpx.Response(200, content=MP4)),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert media == Media(MP4, "video/mp4", "https")


def test_compressed_response_refused():
    async def body():
        yield b"\x1f\x8b\x08\x00 decompression bombs are not welcome"

    def resp(request):
        return httpx.Response(200, content=body(), headers={"content-encoding": "gzip"})

    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            client=mock_client(resp),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_bad_content"


def test_total_timeout():
    async def slow(request):
        await asyncio.sleep(5)
        return httpx.Response(200, content=png_bytes())  # pragma: no cover

    err = refused(
        fetch_media(
            "https://cdn.example.com/a.png",
            field="img",
            timeout=0.05,
            client=mock_client(slow),
            resolver=resolver_for(PUBLIC_DNS),
        )
    )
    assert err.code == "url_timeout"


def test_unknown_kind_is_programming_error():
    with pytest.raises(ValueError):
        run(fetch_media("https://cdn.example.com/a.png", field="img", kind="audio"))


# ------------------------------------------------- real TLS on loopback --
def _make_certs(tmp_path):
    import shutil
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available")

    def sh(*args):
        subprocess.run(["openssl", *args], cwd=tmp_path, check=True, capture_output=True)

    sh(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    )
    sh(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=cdn.test",
    )
    (tmp_path / "ext.cnf").write_text("subjectAltName=DNS:cdn.test\nbasicConstraints=CA:FALSE\n")
    sh(
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    )
    return tmp_path / "ca.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key"


def test_real_tls_pinned_ip_uses_sni_and_verifies_hostname(tmp_path, monkeypatch):
    """Connect to a pinned 127.0.0.1 while SNI/Host/cert check use the URL's hostname."""
    import ssl

    import media_jobs.safe_fetch as safe_fetch

    ca, leaf, key = _make_certs(tmp_path)
    monkeypatch.setattr(safe_fetch, "is_public_address", lambda ip: True)  # allow loopback here
    seen: dict = {"sni": []}
    body = png_bytes()

    async def handle(reader, writer):
        seen["head"] = (await reader.readuntil(b"\r\n\r\n")).decode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body
        )
        await writer.drain()
        writer.close()

    async def scenario():
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(leaf, key)
        server_ctx.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        resolver = lambda host, p: ["127.0.0.1"]  # noqa: E731 - any name -> loopback
        try:
            async with httpx.AsyncClient(
                verify=ssl.create_default_context(cafile=str(ca)), trust_env=False
            ) as client:
                media = await safe_fetch.fetch_media(
                    f"https://cdn.test:{port}/a.png", field="img", client=client, resolver=resolver
                )
                with pytest.raises(FetchRefused) as wrong_name:
                    await safe_fetch.fetch_media(
                        f"https://other.test:{port}/a.png", field="img", client=client, resolver=resolver
                    )
        finally:
            server.close()
        return media, port, wrong_name.value

    media, port, wrong = asyncio.run(scenario())
    assert media == Media(body, "image/png", "https")
    assert seen["sni"][0] == "cdn.test"
    assert f"Host: cdn.test:{port}\r\n" in seen["head"]
    # cert is only valid for cdn.test: verification against the SNI name must fail
    assert seen["sni"][1] == "other.test" and wrong.code == "url_http_error"

"""Static files leave compressed (gzip and brotli) under hashed names cached for a year; the
favicon is found where browsers look; error doc_urls point at this server's own catalog page."""

import re

import pytest
from django.test import override_settings

from gpuniq_site.errors import CATALOG, ApiError, error_body


def _css_url(client) -> str:
    page = client.get("/").content.decode()
    return re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page).group(1)


@pytest.mark.django_db
def test_pages_link_hashed_names_served_for_a_year(client):
    url = _css_url(client)
    response = client.get(url)
    assert response.status_code == 200
    assert "max-age=315360000" in response["Cache-Control"] and "immutable" in response["Cache-Control"]


@pytest.mark.django_db
@pytest.mark.parametrize("accept,encoding", [("br, gzip", "br"), ("gzip", "gzip"), ("identity", None)])
def test_static_files_are_compressed_for_clients_that_accept_it(client, accept, encoding):
    url = _css_url(client)
    plain = b"".join(client.get(url, HTTP_ACCEPT_ENCODING="identity").streaming_content)
    response = client.get(url, HTTP_ACCEPT_ENCODING=accept)
    body = b"".join(response.streaming_content)
    assert response.get("Content-Encoding") == encoding
    if encoding == "br":
        import brotli

        assert brotli.decompress(body) == plain and len(body) < len(plain) / 3
    elif encoding == "gzip":
        import gzip

        assert gzip.decompress(body) == plain and len(body) < len(plain) / 3


@pytest.mark.django_db
def test_favicon_ico_redirects_to_the_long_cached_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert re.fullmatch(r"/static/img/favicon\.[0-9a-f]{12}\.ico", response["Location"])
    icon = client.get(response["Location"])
    assert (
        icon.status_code == 200 and b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"
    )  # ICO header


@override_settings(PUBLIC_BASE_URL="https://gw.example.org/")
def test_doc_urls_point_at_this_servers_error_catalog():
    assert (
        error_body(ApiError("insufficient_balance", required=1, available=0))["doc_url"]
        == "https://gw.example.org/errors/#insufficient_balance"
    )
    assert all(error_body(ApiError(code))["doc_url"].endswith(f"/errors/#{code}") for code in CATALOG)


@pytest.mark.django_db
def test_every_doc_url_anchor_exists_on_the_errors_page(client):
    page = client.get("/errors/").content.decode()
    assert all(f'id="{code}"' in page for code in CATALOG)

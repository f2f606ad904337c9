"""/docs and /redoc work on a network with no way out: their assets come from the app itself."""
from __future__ import annotations

import re

import httpx
import toy_shop

from isles.api import create_app


async def test_docs_pages_load_their_assets_from_the_app_not_a_cdn(env):
    app = create_app(toy_shop.build_system(env=env), start=lambda: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        for page in ("/docs", "/redoc"):
            html = (await client.get(page)).text
            assets = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
            assert assets, html
            off_host = [url for url in assets if re.match(r"(https?:)?//", url)]
            assert off_host == [], f"{page} loads {off_host}"
            for url in assets:
                if url.startswith("/docs/static/"):
                    response = await client.get(url)
                    assert response.status_code == 200 and len(response.content) > 1000, url
        assert (await client.get("/docs/static/swagger-ui-bundle.js")).status_code == 200
        assert (await client.get("/docs/static/swagger-ui.css")).status_code == 200
        assert (await client.get("/openapi.json")).status_code == 200

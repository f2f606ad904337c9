"""Look-alike identifiers are one identifier; hidden characters are refused with a 422 naming the field.

Part numbers are case-insensitive unique: they are stored upper-case (isles.text.UpperIdentifier),
so "p-100" is P-100. Every identifier and name is NFKC-normalised and trimmed; zero-width,
bidirectional-control and byte-order-mark characters are refused.
"""
from __future__ import annotations

import pytest
from mes_helpers import M, W

LOOK_ALIKES = ["P-100\u200b", "P-1\u200d00", " P-100", "P-100 ", "p-100", "\uff30-100",
               "P\u2011100".replace("\u2011", "-"), "\u00a0P-100"]
HIDDEN = {"\u202e": "RIGHT-TO-LEFT OVERRIDE", "\ufeff": "U+FEFF", "\u2066": "LEFT-TO-RIGHT ISOLATE",
          "\u200b": "ZERO WIDTH SPACE", "\n": "control character"}


@pytest.mark.parametrize("number", LOOK_ALIKES)
async def test_a_look_alike_part_number_is_the_same_part(api, crew, number):
    first = await api.http.post(f"{M}/parts", headers=crew.engineer, json={"partNumber": "P-100", "name": "Strut"})
    assert first.status_code == 201, first.text
    second = await api.http.post(f"{M}/parts", headers=crew.engineer, json={"partNumber": number, "name": "Strut"})
    if "\u200b" in number or "\u200d" in number:
        assert second.status_code == 422, second.text  # invisible: refused outright
        assert "partNumber" in second.text
    else:
        assert second.status_code == 409, second.text  # normalised to P-100: a duplicate


async def test_part_numbers_are_stored_normalised(api, crew):
    made = await api.http.post(f"{M}/parts", headers=crew.engineer,
                               json={"partNumber": "  \uff50-７ ", "name": " Bracket  "})
    assert made.status_code == 201, made.text
    assert (made.json()["partNumber"], made.json()["name"]) == ("P-7", "Bracket")


@pytest.mark.parametrize("char", list(HIDDEN))
async def test_hidden_characters_in_a_name_are_refused_naming_the_field(api, crew, char):
    answer = await api.http.post(f"{M}/parts", headers=crew.engineer,
                                 json={"partNumber": "P-200", "name": f"Strut{char}gnal"})
    assert answer.status_code == 422, answer.text
    (error,) = answer.json()["errors"]
    assert error["loc"][-1] == "name" and HIDDEN[char] in error["msg"], error


@pytest.mark.parametrize(("url", "body", "field"), [
    (f"{M}/locations", {"code": "A\u202eB", "name": "Stores"}, "code"),
    (f"{M}/locations", {"code": "STORES-B", "name": "\ufeffStores"}, "name"),
])
async def test_other_identifiers_and_names_refuse_hidden_characters(api, crew, url, body, field):
    answer = await api.http.post(url, headers=crew.engineer, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["loc"][-1] == field


async def test_work_order_numbers_refuse_hidden_characters(plant, crew, api):
    answer = await api.http.post(f"{W}/work-orders", headers=crew.supervisor, json={
        "partId": plant.part["id"], "quantity": 1, "workOrderNumber": "WO-1\u200b"})
    assert answer.status_code == 422 and answer.json()["errors"][0]["loc"][-1] == "workOrderNumber", answer.text

"""Object options are checked before anything is sent and turned into OSS's headers."""

from __future__ import annotations

import pytest

from ossdesk.core.object_options import ObjectOptions, OptionError, parse_tags, tags_text


def test_headers_for_initiate_and_put_and_the_acl_for_complete() -> None:
    options = ObjectOptions(acl="public-read", content_type="text/plain",
                            cache_control="max-age=5", content_disposition="attachment",
                            tags=parse_tags("team=data&note=a%20b"), encryption="kms",
                            kms_key_id="k").checked()
    assert options.headers() == {
        "Content-Type": "text/plain", "Cache-Control": "max-age=5",
        "Content-Disposition": "attachment", "x-oss-tagging": "team=data&note=a%20b",
        "x-oss-server-side-encryption": "KMS", "x-oss-server-side-encryption-key-id": "k"}
    assert options.complete_headers() == {"x-oss-object-acl": "public-read"}
    assert ObjectOptions.from_json(options.to_json()) == options
    assert ObjectOptions().to_json() is None and ObjectOptions().headers() == {}


def test_tags_round_trip_through_the_header() -> None:
    tags = (("a b", "c/d"), ("k:1", "+="))
    assert parse_tags(tags_text(tags)) == tags


@pytest.mark.parametrize(("options", "message"), [
    (ObjectOptions(acl="public"), "object ACL 'public' is not one OSS knows"),
    (ObjectOptions(encryption="AES128"), "use AES256 or KMS"),
    (ObjectOptions(encryption="AES256", kms_key_id="k"), "only with KMS"),
    (ObjectOptions(tags=(("", "v"),)), "key is empty"),
    (ObjectOptions(tags=(("k", "v;"),)), "holds ';'"),
    (ObjectOptions(tags=(("k" * 129, "v"),)), "longer than 128"),
    (ObjectOptions(tags=tuple((f"k{i}", "v") for i in range(11))), "at most 10"),
    (ObjectOptions(content_disposition="attachment; filename=\u62a5\u544a.csv"), "Latin-1"),
])
def test_bad_values_say_what_is_wrong(options: ObjectOptions, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        options.checked()

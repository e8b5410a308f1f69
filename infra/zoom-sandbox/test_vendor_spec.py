"""Tests of vendor_spec.py: $ref closure and patches.

Whether the committed subset is current needs Zoom's full spec beside the repo; that check is
`vendor_spec.py --check`, run by infra/test.sh where the spec is present (not a skipped test).
"""

import unittest

import vendor_spec


def operation(**extra):
    return {"responses": {"204": {"description": "ok"}}, **extra}


class VendorSpecTest(unittest.TestCase):
    def test_copies_only_referenced_components_transitively(self):
        user_id = {"name": "userId", "in": "path", "required": True, "schema": {"oneOf": [{"type": "string"}]}}
        source = {
            "openapi": "3.0.0",
            "info": {"title": "T", "version": "1"},
            "servers": [{"url": "https://api.example/v2"}],
            "security": [{"OAuth": []}],
            "paths": {
                "/users/{userId}/meetings": {
                    "post": operation(
                        parameters=[user_id],
                        requestBody={"content": {"application/json": {"schema": {"$ref": "#/components/schemas/A"}}}},
                    ),
                    "get": operation(parameters=[{"$ref": "#/components/parameters/P"}]),
                },
                "/meetings/{meetingId}": {"get": operation(), "patch": operation(), "delete": operation(),
                                          "put": operation()},
                "/meetings/{meetingId}/status": {"put": operation(tags=["Meetings"])},
                "/users": {"get": operation()},
            },
            "components": {
                "schemas": {
                    "A": {"properties": {"b": {"$ref": "#/components/schemas/B"}}},
                    "B": {"type": "string"},
                    "Unused": {"type": "integer"},
                },
                "parameters": {"P": {"name": "page_size", "in": "query", "schema": {"type": "integer"}}},
                "securitySchemes": {"OAuth": {"type": "oauth2", "flows": {}}, "Other": {"type": "http"}},
            },
            "tags": [{"name": "Meetings"}, {"name": "Users"}],
        }
        subset = vendor_spec.extract(source, "src.json", "abc")
        self.assertEqual(sorted(subset["components"]["schemas"]), ["A", "B"])
        self.assertEqual(list(subset["components"]["parameters"]), ["P"])
        self.assertEqual(list(subset["components"]["securitySchemes"]), ["OAuth"])
        self.assertNotIn("/users", subset["paths"])
        self.assertNotIn("put", subset["paths"]["/meetings/{meetingId}"])
        self.assertEqual(subset["tags"], [{"name": "Meetings"}])
        self.assertEqual(subset["servers"], source["servers"])
        self.assertIn("anyOf", subset["paths"]["/users/{userId}/meetings"]["post"]["parameters"][0]["schema"])
        self.assertIn("oneOf", user_id["schema"])  # the source is left untouched
        provenance = subset["info"]["x-vendored-from"]
        self.assertEqual((provenance["file"], provenance["title"], provenance["version"]), ("src.json", "T", "1"))
        self.assertEqual(len(provenance["operations"]), 6)


if __name__ == "__main__":
    unittest.main()

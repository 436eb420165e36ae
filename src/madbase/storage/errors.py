"""Storage's error registry: every refusal as Supabase Storage renders it.

Body: `{"statusCode": "<code as string>", "code": "<ErrorCode>", "error": "<short name>", "message": ...}`.
As in supabase/storage's error handler the HTTP status is 400 for handled errors whatever the body's
`statusCode` says (so "too large" is HTTP 400 with `statusCode: "413"`), except the few that carry their own
(`http` below): 416 unsatisfiable range, 404 unknown route, 500 internal. The internal cause is logged, never rendered.
"""

from __future__ import annotations

from madbase.core import jsonutil


class StorageError(Exception):
    def __init__(self, code: str, status_code: int, error: str, message: str, *, http: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code
        self.error = error
        self.message = message
        self.http = http

    def body(self) -> bytes:
        return jsonutil.dumps({"statusCode": str(self.status_code), "code": self.code, "error": self.error,
                               "message": self.message})


def no_such_bucket(bucket: str = "") -> StorageError:
    return StorageError("NoSuchBucket", 404, "Bucket not found", "Bucket not found")


def no_such_key(key: str = "") -> StorageError:
    return StorageError("NoSuchKey", 404, "not_found", "Object not found")


def no_such_upload() -> StorageError:
    return StorageError("NoSuchUpload", 404, "not_found", "Upload not found", http=404)


def duplicate(message: str = "The resource already exists") -> StorageError:
    return StorageError("Duplicate", 409, "Duplicate", message)


def bucket_exists() -> StorageError:
    return StorageError("BucketAlreadyExists", 409, "Duplicate", "The resource already exists")


def bucket_not_empty() -> StorageError:
    return StorageError("InvalidRequest", 409, "Bucket not empty", "The bucket you tried to delete is not empty")


def access_denied(message: str = "new row violates row-level security policy") -> StorageError:
    return StorageError("AccessDenied", 403, "Unauthorized", message)


def invalid_jwt(message: str = "invalid signature") -> StorageError:
    return StorageError("InvalidJWT", 400, "Unauthorized", message)


def entity_too_large() -> StorageError:
    # HTTP 400 like every handled error on Supabase (the TUS adapter answers 413, as tus servers do).
    return StorageError("EntityTooLarge", 413, "Payload too large", "The object exceeded the maximum allowed size")


def invalid_mime_type(mime: str) -> StorageError:
    return StorageError("InvalidMimeType", 415, "invalid_mime_type", f"mime type {mime} is not supported")


def invalid_key(key: str) -> StorageError:
    return StorageError("InvalidKey", 400, "InvalidKey", f"Invalid key: {key}")


def invalid_bucket_name(name: str) -> StorageError:
    return StorageError("InvalidBucketName", 400, "Invalid Input", f"Bucket name invalid: {name}")


def invalid_request(message: str) -> StorageError:
    return StorageError("InvalidRequest", 400, "Invalid Input", message)


def invalid_range() -> StorageError:
    return StorageError("InvalidRange", 416, "invalid_range", "The requested range is not satisfiable", http=416)


def not_found_route(method: str, path: str) -> StorageError:
    return StorageError("NotFound", 404, "Not Found", f"Route {method}:{path} not found", http=404)


def feature_not_enabled() -> StorageError:
    """Storage's refusal of a feature the tenant does not have (here: image transformations)."""
    return StorageError("FeatureNotEnabled", 403, "FeatureNotEnabled", "feature not enabled for this tenant", http=403)


def internal() -> StorageError:
    return StorageError("InternalError", 500, "Internal Server Error", "Internal Server Error", http=500)

"""The description of the OpenAPI document: what casevars is, its error format,
authentication, and where it differs from Camunda."""

from __future__ import annotations

from service.camunda.jsontext import MAX_DEPTH
from service.http.body import MAX_BODY_DEPTH
from service.http.cases import UNSUPPORTED_FILTERS
from service.http.paths import MAX_ID_LENGTH
from service.http.query_params import MAX_QUERY_CONDITIONS, MAX_SORTING_ENTRIES, MAX_TENANT_IDS
from service.http.variables import MAX_DELETIONS, MAX_MODIFICATIONS

DESCRIPTION = f"""\
casevars implements Camunda 7's REST API for the variables of case instances. Paths
are relative to the REST root, which casevars serves at four roots with the same
answers (the `servers` of this document): `/`, `/engine-rest` (where Camunda mounts
it), `/engine/{{engineName}}` and `/engine-rest/engine/{{engineName}}`. casevars is one
engine, `default`; another name is refused (400 `No process engine available`, or 404
`Process engine {{name}} not available` before credentials when authentication is on).
The probes, `/metrics` and this document are at `/` only. Binary values (Bytes, File)
are streamed into S3; everything else lives in Postgres.

**Errors.** Every error a handler answers, unknown routes (404) and wrong methods
(405, with `Allow`) included, is JSON: `{{"type", "message", "code"}}` with Camunda's
exception type names and message texts (`code` is `null` for errors of the REST layer
and `0` for errors Camunda's engine raises). Every response carries `X-Request-Id`: the
request's own `X-Request-Id` header when it is printable ASCII of up to 128
characters, else a new id; logs carry the same id.
Malformed HTTP (a request line or header over 8190 bytes, more than 100 headers, a bad
chunk) is refused by the HTTP layer before any of this, with a 400 in the same format
that quotes nothing of the request; so is a request whose line and headers take longer
than `CASEVARS_HEADER_TIMEOUT_SECONDS` (408).

**Authentication** is off unless `CASEVARS_AUTH_FILE` (HTTP Basic, bcrypt htpasswd) or
`CASEVARS_AUTH_TOKENS_FILE` (bearer tokens) is set. When it is on, every route but
`/health/live`, `/health/ready`, `/engine` (and `/metrics` with
`CASEVARS_METRICS_PUBLIC=true`) answers 401 `NotAuthorizedException` without valid
credentials, before any byte of the body is read.

**Where casevars differs from Camunda.** Where Camunda answers 500 for a mistake the
client made, casevars answers the 4xx the client can act on, with the same `type` and
`message`:

- an unknown case instance on a variable route: 404 (Camunda: 400 or 500 by route);
- the same name in `modifications` and `deletions`: 400 (Camunda: 500);
- a multipart form without `data`: 400 `Form part with name 'data' is missing`;
- a `type` part whose JSON cannot be read: 400; only the syntax of the Java type name
  is checked (casevars has no Java classes);
- a File without `filename` (upload or PUT), a File PUT without `valueInfo`: 400;
- a `valueType` naming a non-binary type, `type` `Number` or empty: 400
  `Unsupported value type '...'`;
- a serialized Object without `objectTypeName`, without format or in Java
  serialization, a non-boolean `valueInfo.transient`: 400;
- a non-integer or negative `firstResult` / `maxResults`: 400 (Camunda: 404);
- the filters {", ".join(f"`{name}`" for name in UNSUPPORTED_FILTERS)}: 400, never
  silently ignored (casevars has no process instances, deployments or case
  hierarchies);
- text containing the NUL character, ids and names longer than {MAX_ID_LENGTH}
  characters: 400; a path whose id or name is `.` or `..` or holds `/` (`%2F`): 404;
- a value nesting arrays and objects more than {MAX_DEPTH} levels, a JSON body more
  than {MAX_BODY_DEPTH}, a File `mimeType`, `encoding` or `filename` no header can
  carry: 400 (Camunda stores them and fails to read or download them);
- more than {MAX_MODIFICATIONS} modifications or {MAX_DELETIONS} deletions in one
  request, more than {MAX_QUERY_CONDITIONS} variable conditions, {MAX_TENANT_IDS}
  tenant ids or {MAX_SORTING_ENTRIES} sorting entries in one query: 400;
- bodies and uploads over their configured limits (`CASEVARS_MAX_JSON_BYTES`,
  `CASEVARS_MAX_UPLOAD_BYTES`): 413 as soon as the limit is crossed;
- a client that sends nothing for `CASEVARS_CLIENT_READ_TIMEOUT_SECONDS`: 408, and the
  connection is closed;
- Postgres or S3 not answering: 503 `RestException`.

Values: deserialized Object values are the JSON parsed for `application/json` and the
serialized text otherwise; Json and Xml values are their document text in both modes;
dates are printed in UTC (`+0000`) with milliseconds; a Bytes value larger than
`CASEVARS_INLINE_BYTES_LIMIT` shows `"value": null` and `valueInfo` `{{"size",
"dataUrl"}}` in JSON views. Case instances are created with `PUT /case-instance/{{id}}`
or `POST /case-definition/key/{{key}}/create` (casevars has no case definitions), and
deleted with `DELETE /case-instance/{{id}}`; all are casevars extensions of Camunda's
API.
"""

/**
 * TEST DOUBLE — an in-process EMULATOR of the Kubernetes API server, for tests.
 * It is not Kubernetes: one Node process, one plain-HTTP listener on
 * 127.0.0.1, everything in memory. It exists so the operator can be tested with
 * @kubernetes/client-node and the real `kubectl` (1.32) without a cluster.
 *
 * Emulated faithfully (wire format, status codes, Status bodies, messages):
 * - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`
 *   (legacy form; a request for aggregated discovery gets the legacy form with
 *   `Content-Type: application/json`, and client-go falls back to it), and
 *   OpenAPI v3 (`/openapi/v3` and one document per group-version) so that
 *   kubectl sees that every PATCH accepts `fieldValidation` and leaves field
 *   validation to the server. `/openapi/v2` answers 404 (kubectl copes).
 * - Built-in kinds: v1 namespaces, secrets, configmaps, pods, events,
 *   serviceaccounts, services; coordination.k8s.io/v1 leases; events.k8s.io/v1
 *   events; apiextensions.k8s.io/v1 customresourcedefinitions. Creating a CRD
 *   serves its resources at once (Established), deleting it deletes its objects.
 * - CRUD at the real paths: get, list, watch, create, update (PUT), patch
 *   (merge, JSON patch, strategic merge for built-ins, apply — see below),
 *   delete, deletecollection; the `status` subresource; `dryRun=All`.
 * - Object metadata: uid, creationTimestamp, generateName, one global
 *   etcd-like resourceVersion counter, `generation` bumped on changes other than
 *   metadata and (with a status subresource) status, optimistic concurrency
 *   (409 Conflict on a stale resourceVersion; custom resources require one on
 *   PUT), no-op updates that change nothing (no new resourceVersion, no event).
 * - Finalizers: DELETE sets deletionTimestamp and waits for the last finalizer
 *   to be removed; no new finalizers once deleting (422).
 * - Watch: newline-delimited JSON events, replay from a resourceVersion, 410
 *   Expired ERROR event after `compactHistory()`, BOOKMARKs
 *   (`allowWatchBookmarks`), `timeoutSeconds`, `sendInitialEvents`, label and
 *   field selectors (an object leaving the selector is seen as DELETED).
 * - Custom resources validated against the CRD's openAPIV3Schema: type,
 *   required, enum, pattern, minimum/maximum (+exclusive), multipleOf,
 *   min/maxLength, min/maxItems, uniqueItems, min/maxProperties, nullable,
 *   allOf/anyOf/oneOf/not; structural pruning of unknown fields (unless
 *   `x-kubernetes-preserve-unknown-fields`) with `fieldValidation`
 *   Strict (400 "strict decoding error"), Warn (Warning header, the default)
 *   and Ignore; defaults applied.
 * - Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) with
 *   the CRD's additionalPrinterColumns (simple JSONPath incl. `[?(@.k=="v")]`
 *   filters), Age as a human duration, `includeObject`.
 * - Printer columns follow the real server: a CRD version that declares
 *   additionalPrinterColumns gets Name + those columns (no automatic Age); one
 *   that declares none gets Name + Age. Built-ins: Name, a few columns, Age.
 * - Errors are `Status` objects (NotFound, AlreadyExists, Conflict, Invalid
 *   with causes, BadRequest, MethodNotAllowed, UnsupportedMediaType, Expired).
 *
 * NOT emulated:
 * - authentication and authorization (any token, or none, is accepted), TLS,
 *   admission (no webhooks, no quotas), API aggregation, conversion webhooks
 *   (a multi-version CRD keeps one copy and only rewrites apiVersion);
 * - CEL: `x-kubernetes-validations` rules are evaluated by a real CEL
 *   implementation (see kube-apiserver/cel.ts), but without Kubernetes' own
 *   CEL libraries (`url()`, `quantity()`, …) and cost limits. `format` is not
 *   checked;
 * - schemas of built-in kinds: they are not validated or pruned (a Pod needs
 *   named containers with images, a Namespace a DNS label, nothing more) and
 *   only a few defaults are set (see builtinTypes() in kube-apiserver/builtins.ts);
 * - protobuf and CBOR: responses are always JSON; protobuf request bodies are
 *   decoded only for Namespace, Secret, ConfigMap and ServiceAccount, the kinds
 *   kubectl's `create` generators send that way;
 * - server-side apply is approximated (create, or merge the body into the
 *   object): no field ownership, no managedFields;
 * - strategic merge patch (built-ins only; custom resources get 415, as on a
 *   real server) is a JSON merge patch plus `$patch` and
 *   `$deleteFromPrimitiveList`: lists are replaced, never merged by key;
 * - namespaces are deleted at once with their contents (no Terminating phase);
 *   v1 and events.k8s.io/v1 events are separate stores; `limit`/`continue`
 *   are ignored (one page); a list is always the latest state whatever its
 *   `resourceVersion`/`resourceVersionMatch`.
 *
 * Usage:
 *   const kube = await startKubeApiServer({ crdFiles: ['crds/dockerrepositories.yaml'] });
 *   kc.loadFromFile(kube.kubeconfigPath);           // @kubernetes/client-node
 *   await kubectl(kube, ['get', 'dr', '-A']);        // ./kubectl.ts
 *   kube.create({...}); kube.patchStatus(ref, {...}); kube.compactHistory();
 *   await kube.close();
 */

// The public entry point: the emulator itself is in ./kube-apiserver/, one module a job.
export { startKubeApiServer } from './kube-apiserver/server.js';
export { KubeApiError } from './kube-apiserver/types.js';
export type {
  KubeApiServer,
  KubeApiServerOptions,
  KubeObject,
  KubeStatus,
  ListQuery,
  ObjectMeta,
  ObjectRef,
  PatchType,
  RequestLogEntry,
  StatusCause,
  StatusDetails,
} from './kube-apiserver/types.js';

"""Release tooling: manifests checked and changed, the cluster patched, the canary judged.

- ``canary`` — the canary workflow: start, status, promote, rollback.
- ``canary_judgement`` — champion against canary, measured and judged by the gates.
- ``cluster`` — the InferenceService patched through the Kubernetes API (or the file).
- ``crd`` — manifests validated against the KServe CRD schemas.
- ``kustomize`` — the real kustomize, built from the Go module proxy.
- ``manifest_edits`` — the canary updates of a manifest text (comments and layout kept).

May import: serving, registry and below. Used by ``fraudrisk canary`` and the demo.
"""

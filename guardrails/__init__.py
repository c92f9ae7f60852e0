"""The zero-trust-aks guardrails as a CrossGuard policy pack (see docs/guardrails.md)."""

"""Domain core shared by training and both Lambdas: zones, features, validation, the serving bundle.

It imports numpy and the standard library only (no AWS SDK, no pandas, no scikit-learn), so the
prediction Lambda stays small and starts fast.
"""

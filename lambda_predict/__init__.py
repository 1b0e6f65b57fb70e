"""The prediction service behind the thin `app.lambda_handler`: validation, vectorised prediction,
delivery to the predictions stream, capture and rejection storage. AWS sits behind `ports`."""

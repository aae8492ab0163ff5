"""The web app's built files (`static/`), made from `web/` by `npm run build` and committed,
so that installing Tailwinds needs no Node.js."""

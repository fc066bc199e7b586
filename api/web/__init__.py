"""Server-rendered pages: the staff console, the dashboard and the client portal."""

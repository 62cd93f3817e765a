-- The service's database schema as its first releases made it, before migrations (and
-- before registrations had poll_secret and code_given): upgrades must keep such data.
CREATE TABLE IF NOT EXISTS users (email TEXT PRIMARY KEY, api_key TEXT UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS printers (
  id TEXT PRIMARY KEY, proxy TEXT NOT NULL, name TEXT NOT NULL, default_display_name TEXT,
  uuid TEXT, manufacturer TEXT, model TEXT, firmware TEXT, gcp_version TEXT,
  setup_url TEXT, support_url TEXT, update_url TEXT,
  capabilities TEXT NOT NULL, caps_hash TEXT, semantic_state TEXT NOT NULL,
  local_settings TEXT NOT NULL, owner TEXT, created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL, accessed_ms INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS registrations (
  token TEXT PRIMARY KEY, printer_id TEXT NOT NULL, expires_ms INTEGER NOT NULL,
  claimed_by TEXT, auth_code TEXT);
CREATE TABLE IF NOT EXISTS rate (
  bucket TEXT NOT NULL, ends_ms INTEGER NOT NULL, hits INTEGER NOT NULL, PRIMARY KEY (bucket, ends_ms));
CREATE TABLE IF NOT EXISTS tokens (
  token TEXT PRIMARY KEY, kind TEXT NOT NULL, printer_id TEXT NOT NULL, client_id TEXT NOT NULL,
  expires_ms INTEGER, used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, printer_id TEXT NOT NULL, title TEXT NOT NULL, owner TEXT NOT NULL,
  content_type TEXT NOT NULL, content BLOB NOT NULL, ticket TEXT NOT NULL,
  state TEXT NOT NULL, create_ms INTEGER NOT NULL, update_ms INTEGER NOT NULL,
  delivery_attempts INTEGER NOT NULL DEFAULT 0, pages_printed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS jobs_by_printer ON jobs (printer_id, create_ms);

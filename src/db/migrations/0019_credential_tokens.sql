-- Tokens a provider gets by signing in with a credential (NovelAI's access tokens from email +
-- password), kept between attempts so that each task does not sign in again. One row per
-- credential: two accounts never share a token, and deleting a credential deletes its token.
-- The token is sealed with the same SecretBox as the credential's secret (AES-256-GCM).
CREATE TABLE credential_tokens (
  credential_id     uuid PRIMARY KEY REFERENCES credentials (id) ON DELETE CASCADE,
  token_ciphertext  bytea NOT NULL,
  -- From the token itself (a JWT's exp); NULL when it does not say.
  expires_at        timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Input images for img2img: uploads a user made, and the checked input each task runs on.

-- One checked input image (decoded, EXIF applied and stripped, re-encoded as PNG) a user
-- uploaded; a task names it as `upload:<id>`. Only its owner may use it, as often as they like.
CREATE TABLE uploads (
  id            uuid PRIMARY KEY,
  user_id       uuid NOT NULL REFERENCES users (id),
  -- A random key under inputs/: it says nothing about the user or the file's name.
  storage_key   text NOT NULL,
  content_type  text NOT NULL,
  bytes         integer NOT NULL CHECK (bytes > 0),
  width         integer NOT NULL CHECK (width > 0),
  height        integer NOT NULL CHECK (height > 0),
  sha256        text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX uploads_by_user ON uploads (user_id, id);

-- The checked input of an img2img task, as stored: {storage_key, content_type, bytes, width,
-- height, sha256}. NULL for txt2img.
ALTER TABLE tasks ADD COLUMN input_image jsonb;

-- Every image stored from now on has a thumbnail: a WebP at most 256 px on its longest side,
-- stored under the image's key plus `.thumb.webp` (src/images/thumbnail.ts; retention deletes
-- both by that suffix). The columns describe the thumbnail's stored bytes the way the image's
-- own columns describe the image; they are NULL only for images stored before this migration.
ALTER TABLE task_images
  ADD COLUMN thumbnail_bytes   integer,
  ADD COLUMN thumbnail_width   integer,
  ADD COLUMN thumbnail_height  integer,
  ADD COLUMN thumbnail_sha256  text,
  ADD CONSTRAINT task_images_thumbnail_whole CHECK (
    (thumbnail_bytes IS NULL) = (thumbnail_sha256 IS NULL)
    AND (thumbnail_width IS NULL) = (thumbnail_sha256 IS NULL)
    AND (thumbnail_height IS NULL) = (thumbnail_sha256 IS NULL)
  );

import { z } from 'zod';

/**
 * Artifact manifests. Every artifact written by a batch job (embeddings, PCA, codebooks,
 * semantic-ID tables, item registries, checkpoints) is a directory holding data files and one
 * `manifest.json` that says what produced it, from which inputs, with which settings, and when.
 * Lineage lives here, never in file names.
 */

export const ARTIFACT_KINDS = [
  'item_registry',
  'catalog_snapshot',
  'embeddings',
  'pca',
  'codebooks',
  'semantic_ids',
  'checkpoint',
  'onnx_encoder',
] as const;

export const ArtifactKind = z.enum(ARTIFACT_KINDS).describe('What the artifact holds.');
export type ArtifactKind = z.infer<typeof ArtifactKind>;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');

export const ArtifactFile = z
  .strictObject({
    name: z
      .string()
      .min(1)
      .regex(/^[A-Za-z0-9._-]+$/, 'file names are plain names inside the artifact directory')
      .describe('File name inside the artifact directory.'),
    bytes: z.number().int().nonnegative().describe('Exact size in bytes; a different size means truncation.'),
    sha256: sha256Hex.describe('Content hash, checked on load.'),
    dtype: z.enum(['float32', 'int32', 'uint8', 'uint16', 'json', 'binary']).optional().describe('Element type.'),
    shape: z.array(z.number().int().nonnegative()).optional().describe('Array shape, row-major.'),
    description: z.string().optional().describe('What the file holds.'),
  })
  .describe('One data file of an artifact.');
export type ArtifactFile = z.infer<typeof ArtifactFile>;

export const ArtifactInput = z
  .strictObject({
    role: z.string().min(1).describe('What the input is to this artifact, e.g. `catalog`, `encoder`, `pca`.'),
    hash: z.string().min(1).describe('Content hash of the input (sha256 hex or an artifact id).'),
    artifactId: z.string().optional().describe('Id of the input artifact when the input is one.'),
    description: z.string().optional(),
  })
  .describe('One input that the artifact was computed from.');
export type ArtifactInput = z.infer<typeof ArtifactInput>;

export const ArtifactManifest = z
  .strictObject({
    manifestVersion: z.literal(1).describe('Version of this manifest format.'),
    id: z.string().regex(/^[a-z_]+-[0-9a-f]{16}$/, 'expected `<kind>-<16 hex>`').describe('Artifact id.'),
    kind: ArtifactKind,
    version: z.number().int().positive().describe('Sequence number of this artifact among those of its kind in the store.'),
    producer: z
      .strictObject({
        job: z.string().min(1).describe('The job that wrote it, e.g. `streamrec rebuild`.'),
        streamrecVersion: z.string().min(1),
        node: z.string().min(1).describe('Node.js version.'),
      })
      .describe('What wrote the artifact.'),
    settings: z.record(z.string(), z.unknown()).describe('The settings the job ran with (the parts that matter).'),
    inputs: z.array(ArtifactInput).describe('Inputs with their hashes.'),
    files: z.array(ArtifactFile).min(1).describe('Data files, checked on load.'),
    metrics: z.record(z.string(), z.unknown()).optional().describe('Quality numbers computed with the artifact.'),
    createdAt: z.iso.datetime().describe('When it was written (UTC).'),
  })
  .describe('Manifest of one artifact.');
export type ArtifactManifest = z.infer<typeof ArtifactManifest>;

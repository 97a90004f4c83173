/**
 * Global setup of the unit tests: no services. Test workers inherit this environment (a test
 * file's own process.env is a copy the native library never sees): TensorFlow's start-up lines
 * stay out of the output, and it runs as the CLI runs it (oneDNN's custom ops off; infra/tf.ts).
 */
export default function unitSetup(): void {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  process.env.TF_ENABLE_ONEDNN_OPTS ??= '0';
}

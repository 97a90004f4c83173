/**
 * Global setup of the unit tests: no services. Test workers inherit this environment, so
 * TensorFlow's native start-up lines stay out of the output.
 */
export default function unitSetup(): void {
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
}

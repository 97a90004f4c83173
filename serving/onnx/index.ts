/**
 * serving/onnx: user vectors from two engines behind one interface. The TF.js engine runs the
 * model's own code; the ONNX engine runs the sequence encoder exported as an ONNX graph (built
 * here from the TF.js weights, opset 17) in onnxruntime-node. `openUserEncoder` picks one.
 */
export { checkEncoderBatch, USER_ENCODER_KINDS, type EncoderLimits, type UserEncoder, type UserEncoderKind } from './userEncoder';
export { TfjsUserEncoder } from './tfjsUserEncoder';
export { DEFAULT_ROWS_PER_RUN, OnnxUserEncoder, type OnnxSessionOptions } from './onnxUserEncoder';
export { ENCODER_INPUT, ENCODER_IR_VERSION, ENCODER_OPSET, ENCODER_OUTPUT, type EncoderGraphShape } from './encoderGraph';
export { OnnxEncoderSettings, ONNX_ENCODER_FILE, readOnnxEncoder, type StoredOnnxEncoder } from './manifest';
export { buildOnnxEncoder, findOnnxEncoder, maxAbsDiff, probeBatch, writeOnnxEncoder, type EncoderSource, type OnnxEncoderBuild, type WriteOnnxEncoderOptions } from './exportEncoder';
export { compareUserEncoders, TOP10_TIE, type EncoderComparison } from './compareEncoders';
export { openUserEncoder, USER_ENCODER_CHOICES, type OpenUserEncoderOptions, type UserEncoderChoice } from './openUserEncoder';
export { CoalescedItemScorer, OnnxItemScorer } from './itemScorer';
export { InferenceThread, ThreadedItemScorer, ThreadedUserEncoder } from './inferenceThread';

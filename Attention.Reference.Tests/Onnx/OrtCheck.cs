using Attention.Cli.Onnx;
using Attention.Reference.Onnx;
using Microsoft.ML.OnnxRuntime;
using Onnx;

namespace Attention.Reference.Tests.Onnx;

/// <summary>ONNX Runtime on a model file and one input file, every node against the oracle (as <c>onnx compare</c> does).</summary>
internal static class OrtCheck
{
    public static List<OnnxNodeError> Compare(string modelPath, string inputPath,
        GraphOptimizationLevel level = GraphOptimizationLevel.ORT_DISABLE_ALL)
    {
        var model = OnnxModel.Load(modelPath);
        var inputs = OnnxRunner.ReadInputs<double>(model, [inputPath]);
        var oracle = OnnxRunner.Run(model, inputs, dump: true).Dump!;
        var oracle32 = OnnxRunner.Run(model, OnnxRunner.ReadInputs<float>(model, [inputPath]), dump: true).Dump!;
        var ort = OrtRunner.Run(ModelProto.Parser.ParseFrom(File.ReadAllBytes(modelPath)), inputs, level, threads: 1);
        return OnnxComparison.Compare(model, oracle, oracle32, name => ort.GetValueOrDefault(name), requireAll: true);
    }
}

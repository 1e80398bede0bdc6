using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Attention.Reference.IO;

namespace Attention.Cli.Commands;

/// <summary><c>compare EXPECTED ACTUAL [--rtol R] [--atol A]</c>.</summary>
public static class CompareCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create(CliIO io)
    {
        var expectedArg = new Argument<string>("expected") { Description = "Expected tensors (.safetensors, .npy, .npz, or an ONNX TensorProto .pb)." };
        var actualArg = new Argument<string>("actual") { Description = "Actual tensors (.safetensors, .npy, .npz, or an ONNX TensorProto .pb)." };
        var rtolOpt = new Option<double?>("--rtol") { Description = TolerancesHelp.RTol };
        var atolOpt = new Option<double?>("--atol") { Description = TolerancesHelp.ATol };
        var showOpt = new Option<int>("--show")
        {
            Description = "For each failing tensor, list its K worst elements (index, expected, actual) and, for NCHW tensors, the channels over tolerance.",
            DefaultValueFactory = _ => 0,
        };
        var jsonOpt = new Option<bool>("--json") { Description = "Print one JSON document (for CI) instead of the table." };
        var nameOpt = new Option<string?>("--name")
        {
            Description = "Compare only this tensor of the .safetensors side (with the single tensor of an .npy file, whatever its name).",
        };
        var cmd = new Command("compare", "Compare tensors element-wise: |a − e| ≤ atol + rtol·|e|. Exit 0 when all pass, 1 otherwise.")
        {
            expectedArg, actualArg, rtolOpt, atolOpt, showOpt, jsonOpt, nameOpt,
        };
        cmd.SetAction(p => io.Guard(() =>
        {
            double? rtol = ToleranceOptions.Validate(p.GetValue(rtolOpt), "--rtol");
            double? atol = ToleranceOptions.Validate(p.GetValue(atolOpt), "--atol");
            int show = p.GetValue(showOpt);
            if (show < 0) throw new ArgumentException($"--show must be 0 or more, got {show}.");
            string expectedPath = p.GetValue(expectedArg)!, actualPath = p.GetValue(actualArg)!;
            var expected = TensorFiles.Read(expectedPath, out var metadata);
            var actual = TensorFiles.Read(actualPath);
            if (p.GetValue(nameOpt) is { } name)
            {
                expected = TensorFiles.Pick(expected, name, expectedPath);
                actual = TensorFiles.Pick(actual, name, actualPath);
            }
            var pairs = TensorFiles.SingleTensorPair(expected, actual, expectedPath, actualPath) is var (e1, a1)
                ? [(e1, (StoredTensor?)a1)]
                : expected.Select(e => (e, actual.FirstOrDefault(a => a.Name == e.Name))).ToList();
            var results = pairs.Count == 1 && pairs[0].Item2 is { } only && TensorFiles.IsNpyPair(expectedPath, actualPath)
                ? [TensorComparer.Compare(pairs[0].e, only, rtol, atol)]
                : TensorComparer.CompareSets(expected, actual, rtol, atol, actualPath);
            int failed = results.Count(r => !r.Passed);
            string? first = failed > 0 && metadata.TryGetValue(DumpComparer.OrderKey, out var order)
                ? DumpComparer.FirstDivergence(results, order)!.Name : null;
            var extra = actual.Select(t => t.Name).Except(expected.Select(t => t.Name)).ToList();
            if (p.GetValue(jsonOpt))
            {
                io.Out.WriteLine(CompareJson.Write(expectedPath, actualPath, results, pairs, show, first, extra));
                return failed == 0 ? ExitCodes.Ok : ExitCodes.Mismatch;
            }
            for (int i = 0; i < results.Count; i++)
            {
                var r = results[i];
                io.Out.WriteLine(r);
                if (r.Passed || show == 0 || pairs[i].Item2 is not { } act) continue;
                foreach (var w in ComparisonDetails.Worst(pairs[i].e, act, r, show))
                    io.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"    [{string.Join(",", w.Index)}] e={w.Expected:R} a={w.Actual:R} err/tol={w.Ratio:0.00E+00}"));
                var channels = ComparisonDetails.PerChannel(pairs[i].e, act, r).Where(c => c.Violations > 0).ToList();
                if (channels.Count > 0)
                    io.Out.WriteLine($"    channels over tolerance ({channels.Count} of {pairs[i].e.Shape[1]}): " + string.Join(", ",
                        channels.Take(16).Select(c => string.Create(CultureInfo.InvariantCulture,
                            $"c{c.Channel} {c.Violations}/{c.Elements} worst {c.WorstRatio:0.0E+00}"))) + (channels.Count > 16 ? ", …" : ""));
            }
            if (extra.Count > 0) io.Out.WriteLine($"not in {Path.GetFileName(expectedPath)} (not compared): {string.Join(", ", extra)}");
            io.Out.WriteLine(failed == 0 ? $"PASS: {results.Count} tensors agree" : $"FAIL: {failed} of {results.Count} tensors disagree");
            // A module dump (its "order" metadata lists the modules in call order): name the first module that disagrees.
            if (first is not null) io.Out.WriteLine(DumpComparer.Describe(results.First(r => r.Name == first)));
            return failed == 0 ? ExitCodes.Ok : ExitCodes.Mismatch;
        }));
        return cmd;
    }
}

/// <summary>Reads tensors from .safetensors, .npy, .npz and ONNX TensorProto (.pb) files; other types are refused by name.</summary>
public static class TensorFiles
{
    /// <summary>Every tensor of a .safetensors file, or the one tensor of a .npy file.</summary>
    public static List<StoredTensor> Read(string path) => Read(path, out _);

    /// <summary>Every tensor of a .safetensors file (and its metadata), or the one tensor of a .npy file.</summary>
    public static List<StoredTensor> Read(string path, out Dictionary<string, string> metadata)
    {
        if (Directory.Exists(path)) throw new IOException($"{path}: is a directory; compare takes two tensor files.");
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such file.", path);
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        switch (Path.GetExtension(path).ToLowerInvariant())
        {
            case ".npy": return [Npy.Read(path)];
            case ".pb": return [FromProto(path)];
            case ".npz": return Npy.ReadNpz(path);
            case ".safetensors": return SafeTensors.Read(path, out metadata);
            default:
                throw new InvalidDataException($"{path}: unknown tensor file type '{Path.GetExtension(path)}'; compare reads " +
                    ".safetensors, .npy, .npz and .pb (an ONNX TensorProto, as export and the ONNX test sets write).");
        }
    }

    /// <summary>An ONNX TensorProto file as a stored tensor: its name (or the file stem), its element type and values.</summary>
    private static StoredTensor FromProto(string path)
    {
        var proto = Attention.Reference.Onnx.OnnxTensors.ReadProtoFile(path);
        var v = Attention.Reference.Onnx.OnnxTensors.ToValue<double>(proto, path);
        var dtype = v.ElementType switch
        {
            Attention.Reference.Onnx.OnnxElementType.Float => StoredDType.F32,
            Attention.Reference.Onnx.OnnxElementType.Double => StoredDType.F64,
            Attention.Reference.Onnx.OnnxElementType.Float16 => StoredDType.F16,
            Attention.Reference.Onnx.OnnxElementType.BFloat16 => StoredDType.BF16,
            _ => throw new InvalidDataException($"{path}: holds a tensor of {v.ElementType}; compare reads floating tensors from .pb files."),
        };
        string name = proto.Name.Length > 0 ? proto.Name : Path.GetFileNameWithoutExtension(path);
        return new StoredTensor(name, dtype, v.Shape.ToArray(), v.Reals!.ToArray());
    }

    /// <summary>
    /// When either side is a .npy file and both hold one tensor, the pair to compare whatever their names; otherwise
    /// null (tensors are then paired by name).
    /// </summary>
    public static (StoredTensor Expected, StoredTensor Actual)? SingleTensorPair(
        List<StoredTensor> expected, List<StoredTensor> actual, string expectedPath, string actualPath)
    {
        if (expected.Count == 0) throw new InvalidDataException($"{expectedPath}: holds no tensors.");
        return expected.Count == 1 && actual.Count == 1 && (IsNpy(expectedPath) || IsNpy(actualPath))
            ? (expected[0], actual[0])
            : null;
    }

    // Single-tensor files (.npy, .pb): their one tensor is paired whatever its name.
    private static bool IsNpy(string path) =>
        path.EndsWith(".npy", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".pb", StringComparison.OrdinalIgnoreCase);

    /// <summary>True when either side is an .npy file (tensors are then paired whatever their names).</summary>
    public static bool IsNpyPair(string a, string b) => IsNpy(a) || IsNpy(b);

    /// <summary>
    /// The tensor called <paramref name="name"/> of a .safetensors file (an .npy file's single tensor is kept: it is
    /// named by its file stem, which need not match).
    /// </summary>
    public static List<StoredTensor> Pick(List<StoredTensor> tensors, string name, string path)
    {
        if (IsNpy(path)) return tensors;
        var t = tensors.FirstOrDefault(x => x.Name == name)
            ?? throw new KeyNotFoundException($"{path} has no tensor '{name}' (it has: {string.Join(", ", tensors.Select(x => x.Name).Take(20))}).");
        return [t];
    }
}

/// <summary>Tolerance option texts shared by compare and verify.</summary>
public static class TolerancesHelp
{
    /// <summary>--rtol.</summary>
    public const string RTol = "Relative tolerance (default by the coarser stored dtype: F64 1e-10, F32 1e-5, F16 1e-2, BF16 5e-2).";

    /// <summary>--atol.</summary>
    public const string ATol = "Absolute tolerance (default rtol × max|e| of each tensor, and never below the file's noise floor 64·ε·S).";
}

/// <summary>compare's --json document.</summary>
public static class CompareJson
{
    /// <summary>The document: files, verdict, one object per tensor (with the worst elements when --show asks).</summary>
    public static string Write(string expectedPath, string actualPath, List<TensorComparison> results,
        List<(StoredTensor e, StoredTensor? a)> pairs, int show, string? firstDivergence, List<string> extra)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("expected", expectedPath);
            w.WriteString("actual", actualPath);
            w.WriteBoolean("passed", results.All(r => r.Passed));
            w.WriteNumber("tensors_failed", results.Count(r => !r.Passed));
            if (firstDivergence is null) w.WriteNull("first_divergence"); else w.WriteString("first_divergence", firstDivergence);
            w.WriteStartArray("not_compared");
            foreach (var x in extra) w.WriteStringValue(x);
            w.WriteEndArray();
            w.WriteStartArray("results");
            for (int i = 0; i < results.Count; i++)
            {
                var r = results[i];
                w.WriteStartObject();
                w.WriteString("name", r.Name);
                w.WriteBoolean("passed", r.Passed);
                if (r.Problem is not null) w.WriteString("problem", r.Problem);
                else
                {
                    Number(w, "max_abs_error", r.MaxAbsError);
                    Number(w, "max_rel_error", r.MaxRelError);
                    Number(w, "max_ulps", r.MaxUlps);
                    Number(w, "worst_ratio", r.WorstRatio);
                    w.WriteNumber("violations", r.Violations);
                    Number(w, "rtol", r.RTol);
                    Number(w, "atol", r.ATol);
                    w.WriteStartArray("worst_index");
                    foreach (int k in r.WorstIndex) w.WriteNumberValue(k);
                    w.WriteEndArray();
                    if (show > 0 && !r.Passed && pairs[i].a is { } act)
                    {
                        w.WriteStartArray("worst");
                        foreach (var el in ComparisonDetails.Worst(pairs[i].e, act, r, show))
                        {
                            w.WriteStartObject();
                            w.WriteStartArray("index");
                            foreach (int k in el.Index) w.WriteNumberValue(k);
                            w.WriteEndArray();
                            Number(w, "expected", el.Expected);
                            Number(w, "actual", el.Actual);
                            Number(w, "ratio", el.Ratio);
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                    }
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    // JSON has no NaN or infinity: write them as strings, as Python's json would refuse them too.
    private static void Number(Utf8JsonWriter w, string name, double v)
    {
        if (double.IsFinite(v)) w.WriteNumber(name, v);
        else w.WriteString(name, v.ToString(CultureInfo.InvariantCulture));
    }
}

using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Attention.Reference.Cases;
using Attention.Reference.Models;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.IO;

/// <summary>
/// Mutation fuzzing of the readers: thousands of seeded mutants of valid files, each of which must parse or be refused
/// with exactly the documented exception, its message starting with the source; none may take over a second or allocate
/// more than a small multiple of its own size. Deterministic: a failure names the mutant, and shows it, to reproduce.
/// </summary>
public sealed class ReaderFuzzTests(ITestOutputHelper output)
{
    /// <summary>Mutants per reader: a few thousand, well under a second each on one core.</summary>
    private const int Mutants = 6000;

    [Fact]
    public void SafeTensorsParsesOrRefusesEveryMutant()
    {
        var seeds = SafeTensorsSeeds();
        var mutants = Interleave(
            Mutator.Mutants(seeds, Mutants / 2, seed: 1, SafeTensorsTokens),
            HeaderMutants(seeds, Mutants / 2, seed: 11, SafeTensorsTokens, SplitSafeTensors, JoinSafeTensors));
        Fuzzer.Run<InvalidDataException>(output, "fuzz.safetensors", seeds, mutants, b => CheckSafeTensors(b, SafeTensors.Parse(b, "fuzz.safetensors", out _)));
    }

    [Fact]
    public void NpyParsesOrRefusesEveryMutant()
    {
        var seeds = NpySeeds();
        var mutants = Interleave(
            Mutator.Mutants(seeds, Mutants / 2, seed: 2, NpyTokens),
            HeaderMutants(seeds, Mutants / 2, seed: 12, NpyTokens, SplitNpy, JoinNpy));
        Fuzzer.Run<InvalidDataException>(output, "fuzz.npy", seeds, mutants, b => CheckNpy(b, Npy.Parse(b, "fuzz", "fuzz.npy")));
    }

    /// <summary>
    /// What a safetensors mutant that parses holds must agree with its bytes: each tensor's values fill its shape, and
    /// the tensors' bytes are exactly the file after the header (the buffer has no hole and no trailing byte).
    /// </summary>
    private static void CheckSafeTensors(byte[] file, List<StoredTensor> tensors)
    {
        long header = (long)BinaryPrimitives.ReadUInt64LittleEndian(file);
        long data = 0;
        foreach (var t in tensors)
        {
            long numel = t.Shape.Aggregate(1L, (a, d) => a * d);
            Assert.True(t.Values.Length == numel, $"{t.Name}: {t.Values.Length} values for shape [{string.Join(", ", t.Shape)}]");
            data += numel * StoredTensor.SizeOf(t.DType);
        }
        Assert.True(data == file.Length - 8 - header, $"the tensors hold {data} bytes; the file has {file.Length - 8 - header} after its header");
    }

    /// <summary>
    /// What a .npy mutant that parses holds must agree with its bytes: the values fill the shape, the data is exactly the
    /// file after the header, and (little-endian floats) each value is the one stored there.
    /// </summary>
    private static void CheckNpy(byte[] file, StoredTensor t)
    {
        long numel = t.Shape.Aggregate(1L, (a, d) => a * d);
        Assert.True(t.Values.Length == numel, $"{t.Values.Length} values for shape [{string.Join(", ", t.Shape)}]");
        int size = StoredTensor.SizeOf(t.DType);
        int headerLength = file[6] == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(8)) : (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8));
        int start = (file[6] == 1 ? 10 : 12) + headerLength;
        Assert.True(numel * size == file.Length - start, $"{numel} values of {size} bytes; {file.Length - start} bytes after the header");
        string dict = Encoding.ASCII.GetString(file, 0, start);
        for (int i = 0; i < numel; i++)
        {
            var at = file.AsSpan(start + i * size, size);
            double stored = t.DType switch
            {
                StoredDType.F64 when dict.Contains("'<f8'") => BitConverter.ToDouble(at),
                StoredDType.F32 when dict.Contains("'<f4'") => BitConverter.ToSingle(at),
                _ => t.Values[i],
            };
            Assert.True(BitConverter.DoubleToInt64Bits(stored) == BitConverter.DoubleToInt64Bits(t.Values[i]) || (double.IsNaN(stored) && double.IsNaN(t.Values[i])),
                $"value {i} is {t.Values[i]:R}, the file holds {stored:R}");
        }
    }

    [Fact]
    public void OnnxModelParsesOrRefusesEveryMutant()
    {
        // Small models of the ONNX node tests: protobuf framing, attributes, initializers, graph inputs and outputs.
        string root = Path.Combine(AppContext.BaseDirectory, "testdata", "onnx", "node");
        var seeds = new[] { "test_conv_with_strides_padding", "test_gemm_all_attributes", "test_slice", "test_reshape_reduced_dims" }
            .Select(d => File.ReadAllBytes(Path.Combine(root, d, "model.onnx"))).ToList();
        var tokens = Mutator.Bytes("Conv", "Gemm", "pads", "kernel_shape", "\u0008\u0001", "\u0010\u0007", "\u00ff\u00ff\u00ff\u00ff\u000f");
        Fuzzer.Run<Attention.Reference.Onnx.OnnxException>(output, "fuzz.onnx", seeds, Mutator.Mutants(seeds, Mutants, seed: 4, tokens),
            b => Attention.Reference.Onnx.OnnxModel.Parse(b, "fuzz.onnx"));
    }

    [Fact]
    public void OnnxModelRunsOrRefusesEveryMutant()
    {
        // Mutants that parse are also run on their seed's inputs: evaluation errors must be OnnxException naming the
        // model and the node, never another exception, and no single value may be allocated past the checked limit.
        string root = Path.Combine(AppContext.BaseDirectory, "testdata", "onnx", "node");
        var names = new[] { "test_conv_with_strides_padding", "test_averagepool_2d_pads", "test_slice", "test_reshape_reduced_dims",
            "test_gemm_all_attributes", "test_split_equal_parts_default_axis", "test_expand_dim_changed", "test_constantofshape_float_ones" };
        var seeds = names.Select(d => File.ReadAllBytes(Path.Combine(root, d, "model.onnx"))).ToList();
        var inputs = names.Select(d => Directory.GetFiles(Path.Combine(root, d, "test_data_set_0"), "input_*.pb").Order(StringComparer.Ordinal)
            .Select(f => Attention.Reference.Onnx.OnnxTensors.ReadProtoFile(f)).ToList()).ToList();
        var tokens = Mutator.Bytes("pads", "kernel_shape", "strides", "axis", "\u0008\u0001", "\u00ff\u00ff\u00ff\u00ff\u000f");
        int index = 0, ran = 0;
        // The shared harness: each mutant parses and runs, or is refused with an OnnxException naming the model (a
        // runtime error such as IndexOutOfRange is a defect, not a refusal); within the per-input time limit and the
        // readers' allocation limit plus 64 MB for the values a mutated attribute may legitimately make larger.
        Fuzzer.Run<Attention.Reference.Onnx.OnnxException>(output, "fuzz.onnx", seeds, Mutator.Mutants(seeds, Mutants, seed: 5, tokens), mutant =>
        {
            var feeds = inputs[index++ % seeds.Count];
            var model = Attention.Reference.Onnx.OnnxModel.Parse(mutant, "fuzz.onnx");
            var values = new Dictionary<string, Attention.Reference.Onnx.OnnxValue<double>>();
            for (int i = 0; i < Math.Min(feeds.Count, model.Inputs.Count); i++)
                values[model.Inputs[i].Name] = Attention.Reference.Onnx.OnnxTensors.ToValue<double>(feeds[i], "fuzz.onnx: input");
            model.Run(values);
            ran++;
        }, input => Fuzzer.AllocationLimit(input) + (64L << 20));
        output.WriteLine($"fuzz.onnx run: {ran} ran");
        // About one mutant in ten parses; of those, most are refused by the evaluator (shapes, attributes) and some run.
        Assert.True(ran > 30, $"{ran} ran: the fuzz is not reaching the evaluator");
    }

    [Fact]
    public void ImagesDecodeOrAreRefusedForEveryMutant()
    {
        // The PNG and JPEG decoders (StbImageSharp behind RgbImage.Decode): each mutant decodes to width·height·3 bytes
        // or is refused with an InvalidDataException naming the file. A header may legitimately claim a larger image
        // than its data holds, so the allocation allowed is the readers' plus the claimed image, three bytes a pixel,
        // twice over (the decoder's buffer and the result).
        string dir = Path.Combine(AppContext.BaseDirectory, "testdata", "images");
        // JPEG mutants whose segments ran past the file's end made the decoder loop for minutes (this fuzz found it; the
        // JPEG segment walk refuses them now, see JpegSegmentsPastTheEndAreRefused).
        var seeds = new[] { "sample_97x73.png", "sample_97x73.jpg" }.Select(f => File.ReadAllBytes(Path.Combine(dir, f))).ToList();
        var tokens = Mutator.Bytes("IHDR", "IDAT", "IEND", "\u00ff\u00c0", "\u00ff\u00c4", "\u00ff\u00da", "\u00ff\u00d9",
            "\u00ff\u00d8", "\u00ff\u00e0\u0080\u0000");
        Fuzzer.Run<InvalidDataException>(output, "fuzz.img", seeds, Mutator.Mutants(seeds, Mutants, seed: 6, tokens), b =>
        {
            var image = Attention.Reference.Imaging.RgbImage.Decode(b, "fuzz.img");
            Assert.True(image.Pixels.Length == (long)image.Width * image.Height * 3, $"{image.Width}x{image.Height}: {image.Pixels.Length} bytes");
        }, input => Fuzzer.AllocationLimit(input) + 2 * 3 * ClaimedPixels(input));
    }

    /// <summary>The pixels an image's header claims (0 when the header does not parse, or the decoder would refuse it).</summary>
    private static long ClaimedPixels(byte[] input)
    {
        try
        {
            // The decoder's header reader loops on a JPEG whose segments run past the end: asked only after the walk.
            Attention.Reference.Imaging.RgbImage.CheckJpegSegments(input, "fuzz.img");
            using var s = new MemoryStream(input, writable: false);
            return StbImageSharp.ImageInfo.FromStream(s) is { } i ? (long)Math.Max(i.Width, 0) * Math.Max(i.Height, 0) : 0;
        }
        catch (Exception) { return 0; }
    }

    [Fact]
    public void CaseConfigParsesOrRefusesEveryMutant()
    {
        var seeds = CaseSeeds();
        // Mutated as UTF-8 bytes and decoded (invalid sequences become U+FFFD), as File.ReadAllText would.
        Fuzzer.Run<CaseFormatException>(output, "fuzz.json", seeds, Mutator.Mutants(seeds, Mutants, seed: 3, JsonTokens),
            b => CaseConfig.Parse(Encoding.UTF8.GetString(b), "fuzz.json"));
    }

    /// <summary>
    /// Mutants of the headers alone, rejoined with their data under a length prefix rewritten to fit. Nearly every
    /// insertion or deletion in a whole file breaks the length prefix, which the reader refuses first; these reach the
    /// JSON or dict parsing and the checks after it.
    /// </summary>
    private static IEnumerable<byte[]> HeaderMutants(IReadOnlyList<byte[]> seeds, int count, int seed,
        IReadOnlyList<byte[]> tokens, Func<byte[], (byte[] Header, byte[] Data)> split, Func<byte[], byte[], byte[], byte[]> join)
    {
        var parts = seeds.Select(split).ToArray();
        var each = parts.Select((p, k) => Mutator.Mutants(p.Header, (count + k) / parts.Length, seed * 100 + k, tokens)
            .Select(h => join(seeds[k], h, p.Data))).ToArray();
        return each.Aggregate(Enumerable.Empty<byte[]>(), Interleave);
    }

    private static IEnumerable<byte[]> Interleave(IEnumerable<byte[]> a, IEnumerable<byte[]> b)
    {
        using var x = a.GetEnumerator();
        using var y = b.GetEnumerator();
        bool more = true;
        while (more)
        {
            more = false;
            if (x.MoveNext()) { more = true; yield return x.Current; }
            if (y.MoveNext()) { more = true; yield return y.Current; }
        }
    }

    private static (byte[], byte[]) SplitSafeTensors(byte[] file)
    {
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        return (file[8..(8 + n)], file[(8 + n)..]);
    }

    private static byte[] JoinSafeTensors(byte[] seed, byte[] header, byte[] data) =>
        [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. data];

    private static (byte[], byte[]) SplitNpy(byte[] file)
    {
        int start = file[6] == 1 ? 10 : 12;
        int n = file[6] == 1
            ? BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(8))
            : (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(8));
        return (file[start..(start + n)], file[(start + n)..]);
    }

    private static byte[] JoinNpy(byte[] seed, byte[] header, byte[] data) => seed[6] == 1
        ? [.. seed[..8], .. BitConverter.GetBytes((ushort)header.Length), .. header, .. data]
        : [.. seed[..8], .. BitConverter.GetBytes((uint)header.Length), .. header, .. data];

    private static readonly IReadOnlyList<byte[]> SafeTensorsTokens = Mutator.Dictionary(
        "\"__metadata__\"", "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"F64\"", "\"F32\"", "\"F16\"", "\"BF16\"",
        "\"I64\"", "\"U8\"", "\"BOOL\"", "\"dtype\":\"F64\",", "[]", "[0,0]", "[0]", "{}", "null", "true", "1e400", "-0",
        "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "\\\"", "\u00e9", ",", ":");

    private static readonly IReadOnlyList<byte[]> NpyTokens = Mutator.Dictionary(
        "'descr'", "'fortran_order'", "'shape'", "'<f8'", "'<f4'", "'>f8'", "'|b1'", "True", "False", "()", "(,)", "(3)",
        "(0,)", "(03,)", "(2147483647,", "\"", "'", ",", ":", "        ", "\t", "\n", "\r\n", "\\", "#", "\u00a0", "u'");

    private static readonly IReadOnlyList<byte[]> JsonTokens = Mutator.Dictionary(
        "\"module\"", "\"module\":\"se\",", "\\ud800", "\\udc00", "\\ud83d\\ude00", "\\u0000", "null", "true", "[", "]",
        "{", "}", "\"a\":", ",", "1e999", "-0", "/*c*/", "//c\n", new string('[', 70), new string('{', 3) + "\"a\":",
        "\u00e9", "\uFEFF");

    private static IReadOnlyList<byte[]> SafeTensorsSeeds()
    {
        var f64 = new TensorSet<double>();
        f64.Set("x", new DenseTensor<double>([1.5, -0.0, double.Epsilon, Math.PI, 1e-300, -7], 2, 3));
        f64.Set("empty", new DenseTensor<double>(0, 3));
        f64.Set("s", new DenseTensor<double>([42.0]));
        var f32 = new TensorSet<float>();
        f32.Set("w", new DenseTensor<float>([0.1f, -2f, 3f, float.Epsilon], 2, 2));
        f32.Set("b", new DenseTensor<float>([1f, 2f], 2));

        // F16, BF16 and I64 tensors and a __metadata__ with a non-ASCII value: written by hand, as Serialize writes F64/F32.
        byte[] data = new byte[8 + 6 + 8];
        BinaryPrimitives.WriteHalfLittleEndian(data, (Half)1.5);
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(2), (Half)(-2));
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(4), Half.Epsilon);
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(6), Half.MaxValue);
        for (int i = 0; i < 3; i++) // bfloat16: the high half of a float32
            BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(8 + 2 * i),
                (ushort)(BitConverter.SingleToInt32Bits(i - 1.25f) >> 16));
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(14), -123456789);
        string header = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\u00e9 \\ud83d\\ude00\"},"
            + "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
            + "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[8,14]},"
            + "\"n\":{\"dtype\":\"I64\",\"shape\":[1,1],\"data_offsets\":[14,22]},"
            + "\"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[22,22]}}";
        byte[] h = Encoding.UTF8.GetBytes(header);
        byte[] mixed = [.. BitConverter.GetBytes((ulong)h.Length), .. h, .. data];

        return
        [
            SafeTensors.Serialize(f64),
            SafeTensors.Serialize(f32, new Dictionary<string, string> { ["format"] = "pt", ["k"] = "v" }),
            mixed,
        ];
    }

    private static IReadOnlyList<byte[]> NpySeeds()
    {
        var m = new DenseTensor<double>([1, -2.5, Math.E, 0, -0.0, 1e-310], 2, 3);
        var v = new DenseTensor<float>([0.1f, 0.2f, 0.3f], 3);
        var s = new DenseTensor<double>([7.0]);
        var e = new DenseTensor<float>(0, 5);
        // A header as other writers may lay it out: double quotes, other key order, no trailing comma.
        string dict = "{\"shape\": (2, 1), \"descr\": \"<f4\", \"fortran_order\": False}";
        byte[] h = Encoding.ASCII.GetBytes(dict.PadRight(64 - 10 - 1) + "\n");
        byte[] other = [0x93, .. "NUMPY"u8, 1, 0, .. BitConverter.GetBytes((ushort)h.Length), .. h, .. new byte[8]];
        return [Npy.Serialize(m), Npy.Serialize(v), Npy.Serialize(s, 2), Npy.Serialize(v, 2), Npy.Serialize(e), other];
    }

    private static IReadOnlyList<byte[]> CaseSeeds() =>
    [
        Encoding.UTF8.GetBytes("{\"module\":\"se\",\"channels\":16,\"kernel_size\":[1,3],\"bias\":true,\"colour\":\"red\"}"),
        Encoding.UTF8.GetBytes(CaseConfig.Create("gct", ("channels", 32), ("eps", 1e-5), ("mode", "l2"), ("after_relu", false),
            ("kernel_size", new[] { 3, 3 })).ToJson()),
        Encoding.UTF8.GetBytes("""
            {"module": "resnet50", "layers": [1, 1, 1, 1], "channels": [4, 8, 16, 32], "num_classes": 4,
             "extra": {"nested": [1, -2.5e-3, {"a": null}], "s": "caf\u00e9 \ud83d\ude00 \"q\" \\"}}
            """),
    ];

}

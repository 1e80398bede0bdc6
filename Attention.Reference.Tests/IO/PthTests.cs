using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.IO;

/// <summary>
/// Pth reads what torch.save wrote (fixtures made by testdata/pth/make_fixtures.py with PyTorch, values compared
/// bitwise with the expected.json the same script wrote), and refuses everything else with an InvalidDataException
/// whose message starts with the file name: hostile pickles, damaged archives, inconsistent sizes, mutants.
/// </summary>
public class PthTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string Folder => Path.Combine(AppContext.BaseDirectory, "testdata", "pth");

    private static string Fixture(string name) => Path.Combine(Folder, name);

    /// <summary>The file the malicious fixture's os.system command would create.</summary>
    private const string PwnedMarker = "/tmp/attention-pth-fixture-pwned";

    public static TheoryData<string> GoodFixtures => new()
    {
        "sequential_f32.pth", "sequential_f64.pth", "views.pth", "half.pth", "ints.pth", "dataparallel.pth", "protocol4.pth",
    };

    private sealed record Expected(string Name, StoredDType DType, int[] Shape, double[] Values);

    /// <summary>The tensors of one fixture as make_fixtures.py recorded them, in state_dict order.</summary>
    private static List<Expected> ExpectedOf(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Fixture("expected.json")));
        return doc.RootElement.GetProperty(fixture).EnumerateObject().Select(p => new Expected(
            p.Name,
            Enum.Parse<StoredDType>(p.Value.GetProperty("dtype").GetString()!),
            p.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray(),
            p.Value.GetProperty("values").EnumerateArray().Select(v => v.ValueKind == JsonValueKind.String
                ? double.Parse(v.GetString()!, CultureInfo.InvariantCulture) : v.GetDouble()).ToArray())).ToList();
    }

    private static void AssertSameBits(double[] expected, double[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.DoubleToInt64Bits(expected[i]) == BitConverter.DoubleToInt64Bits(actual[i]),
                $"{what}[{i}]: {actual[i]:R}, expected {expected[i]:R}");
    }

    private static string Refusal(byte[] bytes, string source = "model.pth")
    {
        var e = Assert.Throws<InvalidDataException>(() => Pth.Parse(bytes, source));
        Assert.StartsWith(source + ": ", e.Message);
        return e.Message;
    }

    // ---- Genuine files ----

    [Theory]
    [MemberData(nameof(GoodFixtures))]
    public void PthReadsEveryFixtureExactly(string fixture)
    {
        var expected = ExpectedOf(fixture);
        var actual = Pth.Read(Fixture(fixture));
        Assert.Equal(expected.Select(e => e.Name), actual.Select(t => t.Name));
        foreach (var (e, a) in expected.Zip(actual))
        {
            Assert.Equal(e.DType, a.DType);
            Assert.Equal(e.Shape, a.Shape);
            AssertSameBits(e.Values, a.Values, $"{fixture}:{e.Name}");
        }
    }

    [Fact]
    public void PthReadsTheSequentialStateDictWithItsTypes()
    {
        var t = Pth.Read(Fixture("sequential_f32.pth"));
        Assert.Equal(["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked",
            "2.weight", "2.bias"], t.Select(x => x.Name));
        Assert.Equal([4, 3, 3, 3], t[0].Shape);
        Assert.All(t.Where(x => x.Name != "1.num_batches_tracked"), x => Assert.Equal(StoredDType.F32, x.DType));
        var tracked = t.Single(x => x.Name == "1.num_batches_tracked");
        Assert.Equal(StoredDType.I64, tracked.DType);
        Assert.Empty(tracked.Shape);
        Assert.Equal([1.0], tracked.Values);
        // The tensors convert like any stored tensor.
        Assert.Equal(t[7].Values, t.Where(s => !s.IsInteger).ToTensorSet<double>("fc").Get("2.weight").Data);
        Assert.Throws<InvalidDataException>(() => t.ToTensorSet<double>("fc"));
    }

    [Fact]
    public void PthFloat64AndDataParallelFilesHoldTheSameValues()
    {
        // make_fixtures.py builds each model from the same seed; .double() widens the float32 values exactly.
        var f32 = Pth.Read(Fixture("sequential_f32.pth"));
        var f64 = Pth.Read(Fixture("sequential_f64.pth"));
        var dp = Pth.Read(Fixture("dataparallel.pth"));
        Assert.All(f64.Where(x => x.DType != StoredDType.I64), x => Assert.Equal(StoredDType.F64, x.DType));
        Assert.Equal(f32.Select(x => "module." + x.Name), dp.Select(x => x.Name));
        for (int i = 0; i < f32.Count; i++)
        {
            AssertSameBits(f32[i].Values, f64[i].Values, f32[i].Name);
            AssertSameBits(f32[i].Values, dp[i].Values, dp[i].Name);
        }
    }

    [Fact]
    public void PthGathersViewsIntoCOrder()
    {
        var t = Pth.Read(Fixture("views.pth")).ToDictionary(x => x.Name);
        Assert.Equal([3, 2], t["w"].Shape); // arange(6).reshape(2, 3).t(): strides (1, 3)
        Assert.Equal([0.0, 3, 1, 4, 2, 5], t["w"].Values);
        Assert.Equal([3.0, 4, 5, 6], t["tail"].Values); // storage offset 3
        Assert.Equal([0.0, 2, 4, 6, 8, 10], t["strided"].Values); // strides (4, 2)
        Assert.Equal([4.0, 7, 10], t["again"].Values); // another view of the same storage
        Assert.Empty(t["scalar"].Shape);
        Assert.Equal([5.0], t["scalar"].Values);
    }

    [Fact]
    public void PthWidensHalfBFloat16AndIntegersExactly()
    {
        var half = Pth.Read(Fixture("half.pth"));
        Assert.Equal([StoredDType.F16, StoredDType.BF16], half.Select(x => x.DType));
        Assert.Equal(double.PositiveInfinity, half[0].Values[4]);
        Assert.True(double.IsNegative(half[0].Values[1]) && half[0].Values[1] == 0); // -0.0 keeps its sign
        Assert.Equal(Math.Pow(2, -24), half[0].Values[2]); // the smallest subnormal
        var ints = Pth.Read(Fixture("ints.pth")).ToDictionary(x => x.Name);
        Assert.Equal([-9007199254740992.0, -1, 0, 9007199254740992], ints["i64"].Values);
        Assert.Equal([-128.0, 127, 0, -1], ints["i8"].Values);
        Assert.Equal([0.0, 255, 7], ints["u8"].Values);
        Assert.Equal([1.0, 0, 1], ints["mask"].Values);
        Assert.Equal(StoredDType.BOOL, ints["mask"].DType);
    }

    // ---- Hostile and broken files ----

    [Fact]
    public void PthRefusesTheMaliciousPickleByNamingTheGlobal()
    {
        File.Delete(PwnedMarker);
        string path = Fixture("malicious.pth");
        var e = Assert.Throws<InvalidDataException>(() => Pth.Read(path));
        Assert.Equal($"{path}: forbidden global 'os.system' in the pickle " +
            "(only torch.load(weights_only=True) globals are allowed)", e.Message);
        Assert.False(File.Exists(PwnedMarker), "the malicious pickle ran");
    }

    [Fact]
    public void PthRefusesAStorageTooShortForTheTensor()
    {
        var e = Assert.Throws<InvalidDataException>(() => Pth.Read(Fixture("short_storage.pth")));
        Assert.EndsWith("short_storage.pth: storage 'archive/data/0' is 40 bytes, tensor 'fc.weight' needs 80", e.Message);
    }

    [Fact]
    public void PthRefusesATruncatedZipNamingTheFile()
    {
        byte[] good = File.ReadAllBytes(Fixture("sequential_f32.pth"));
        string dir = Directory.CreateTempSubdirectory().FullName;
        try
        {
            string path = Path.Combine(dir, "cut.pth");
            File.WriteAllBytes(path, good[..(good.Length / 2)]);
            var e = Assert.Throws<InvalidDataException>(() => Pth.Read(path));
            Assert.StartsWith($"{path}: not a zip file (truncated or not a PyTorch file)", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void PthRefusesRandomBytesEmptyFilesAndTheLegacyFormat()
    {
        var random = new byte[4096];
        new Random(7).NextBytes(random);
        Assert.Contains("not a zip file", Refusal(random));
        random[0] = (byte)'P'; random[1] = (byte)'K'; random[2] = 3; random[3] = 4;
        Assert.Contains("not a zip file", Refusal(random));
        Assert.Contains("not a zip file", Refusal([]));
        Assert.Contains("legacy (pre-1.6)", Refusal([0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8]));
        Assert.Throws<FileNotFoundException>(() => Pth.Read(Fixture("no-such-file.pth")));
    }

    [Fact]
    public void PthRefusesBigEndianArchivesAndMissingPieces()
    {
        byte[] good = File.ReadAllBytes(Fixture("protocol4.pth"));
        Assert.Contains("big-endian", Refusal(Rewrite(good, add: ("archive/byteorder", "big"u8.ToArray()))));
        Assert.Equal(2, Pth.Parse(Rewrite(good, add: ("archive/byteorder", "little"u8.ToArray())), "m.pth").Count);
        Assert.Contains("storage 'archive/data/1' is missing", Refusal(Rewrite(good, drop: "archive/data/1")));
        Assert.Contains("no 'archive/data.pkl'", Refusal(Rewrite(good, drop: "archive/data.pkl")));
        Assert.Contains("storage 'archive/data/0' declares 12 bytes in the zip directory, but the pickle declares 4 elements of F32",
            Refusal(Rewrite(good, replace: ("archive/data/0", new byte[12]))));
        Assert.Contains("storage 'archive/data/0' declares 20 bytes in the zip directory, but the pickle declares 4 elements of F32",
            Refusal(Rewrite(good, replace: ("archive/data/0", new byte[20])))); // too long as well as too short
        // An entry declaring far more than the pickle's storage is refused before it is read: nothing near its size is
        // allocated (before, the reader inflated it first, then compared).
        var big = Rewrite(good, replace: ("archive/data/0", new byte[16 << 20]));
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Contains("declares 16777216 bytes in the zip directory", Refusal(big));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 2 << 20);
        Assert.Contains("not in a folder", Refusal(Zip(("data.pkl", [0x80, 2, (byte)'.']))));
    }

    [Fact]
    public void PthRefusesPicklesThatAreNotStateDicts()
    {
        // {'epoch': 3}
        Assert.Contains("the value of 'epoch' is an int, not a tensor",
            Refusal(Zip(("a/data.pkl", new Pickle().Op('}').Str("epoch").Int(3).Op('s').Stop()))));
        // {'model': {}}: a checkpoint rather than a state_dict
        Assert.Contains("(a checkpoint? save model.state_dict() itself)",
            Refusal(Zip(("a/data.pkl", new Pickle().Op('}').Str("model").Op('}').Op('s').Stop()))));
        Assert.Contains("the pickle holds a list, not a state_dict", Refusal(Zip(("a/data.pkl", new Pickle().Op(']').Stop()))));
        Assert.Contains("only str keys", Refusal(Zip(("a/data.pkl", new Pickle().Op('}').Int(1).Int(2).Op('s').Stop()))));
        // An empty state_dict is a state_dict.
        Assert.Empty(Pth.Parse(Zip(("a/data.pkl", new Pickle().Op('}').Stop())), "m.pth"));
    }

    [Fact]
    public void PthRefusesForbiddenAndUnsupportedGlobalsAndOpcodes()
    {
        string Global(string module, string name) =>
            Refusal(Zip(("a/data.pkl", new Pickle().Global(module, name).Op(')').Op('R').Stop())));
        Assert.Contains("forbidden global 'builtins.eval'", Global("builtins", "eval"));
        Assert.Contains("forbidden global 'posix.system'", Global("posix", "system"));
        Assert.Contains("forbidden global '__main__.Net'", Global("__main__", "Net"));
        Assert.Contains("a whole model? save model.state_dict() instead", Global("torch.nn.modules.container", "Sequential"));
        Assert.Contains("unsupported global 'torch._utils._rebuild_sparse_tensor'",
            Global("torch._utils", "_rebuild_sparse_tensor"));
        Assert.Contains("unsupported global 'torch.nn.parameter.Parameter'", Global("torch.nn.parameter", "Parameter"));
        Assert.Contains("the pickle calls 'torch.FloatStorage'", Global("torch", "FloatStorage"));
        // STACK_GLOBAL (protocol 4) goes through the same check.
        Assert.Contains("forbidden global 'os.system'",
            Refusal(Zip(("a/data.pkl", new Pickle().Str("os").Str("system").Op(0x93).Stop()))));
        Assert.Contains("unsupported pickle opcode NEWOBJ (0x81)",
            Refusal(Zip(("a/data.pkl", new Pickle().Op(')').Op(')').Op(0x81).Stop()))));
        Assert.Contains("unsupported pickle opcode INST", Refusal(Zip(("a/data.pkl", new Pickle().Op('i').Stop()))));
        Assert.Contains("data.pkl ends without STOP", Refusal(Zip(("a/data.pkl", new Pickle().Op('}').Build()))));
        Assert.Contains("stack underflow", Refusal(Zip(("a/data.pkl", new Pickle().Op('s').Stop()))));
        Assert.Contains("memo 9 was never set", Refusal(Zip(("a/data.pkl", new Pickle().Op('h').Byte(9).Stop()))));
        Assert.Contains("only storages may be loaded",
            Refusal(Zip(("a/data.pkl", new Pickle().Str("x").Op(0x85).Op('Q').Stop()))));
    }

    [Fact]
    public void PthHonoursExpandedViewsButBoundsTheirOutput()
    {
        var one = BitConverter.GetBytes(2.5f);
        var t = Pth.Parse(Zip(("a/data.pkl", TensorPickle(size: [2, 3], stride: [0, 0], numel: 1)), ("a/data/0", one)), "m.pth");
        Assert.Equal([2, 3], t[0].Shape);
        Assert.Equal(Enumerable.Repeat(2.5, 6), t[0].Values);
        // A billion values from one float: refused before anything is allocated.
        Assert.Contains("expand to more than 4×",
            Refusal(Zip(("a/data.pkl", TensorPickle(size: [1L << 30], stride: [0], numel: 1)), ("a/data/0", one))));
    }

    [Fact]
    public void PthChecksOffsetsSizesAndStridesIn64Bits()
    {
        var storage = ("a/data/0", new byte[16]); // four float32
        string Bad(long[] size, long[] stride, long offset = 0) =>
            Refusal(Zip(("a/data.pkl", TensorPickle(size, stride, numel: 4, offset)), storage));
        Assert.Contains("storage 'a/data/0' is 16 bytes, tensor 'w' needs 20", Bad([5], [1]));
        Assert.Contains("needs 20", Bad([2, 2], [2, 1], offset: 1));
        Assert.Contains("needs 28", Bad([2], [6])); // strides may skip, but not past the end
        Assert.Contains("overflow 64 bits", Bad([3], [long.MaxValue / 2 + 1]));
        Assert.Contains("negative stride", Bad([2], [-1]));
        Assert.Contains("negative storage offset", Bad([1], [1], offset: -1));
        Assert.Contains("has 2 sizes but 1 strides", Bad([2, 2], [1]));
        Assert.Contains("is too large", Bad([1L << 30, 1L << 30], [0, 0]));
        // Zero-size tensors touch nothing, whatever their offset.
        Assert.Empty(Pth.Parse(Zip(("a/data.pkl", TensorPickle([0, 5], [5, 1], numel: 4, offset: 100)), storage), "m")[0].Values);
    }

    // ---- Mutation fuzzing ----

    [Fact]
    public void PthMutantsOfAGoodArchiveParseOrFailCleanly() =>
        Fuzz(File.ReadAllBytes(Fixture("sequential_f32.pth")), seed: 1, mutants: 2000, rezip: false);

    [Fact]
    public void PthMutantsOfAGoodPickleParseOrFailCleanly() =>
        Fuzz(File.ReadAllBytes(Fixture("sequential_f32.pth")), seed: 2, mutants: 2000, rezip: true);

    /// <summary>
    /// Overwrites or bit-flips 1 to 8 random bytes of the file (or, with <paramref name="rezip"/>, of its data.pkl, rezipped
    /// with a valid checksum so the unpickler sees every mutant) and asserts each mutant parses or throws
    /// InvalidDataException naming the source. Deterministic (seeded) and bounded in time.
    /// </summary>
    private void Fuzz(byte[] good, int seed, int mutants, bool rezip)
    {
        var entries = Entries(good);
        string pklName = entries.Keys.Single(k => k.EndsWith("/data.pkl", StringComparison.Ordinal));
        byte[] target = rezip ? entries[pklName] : good;
        IEnumerable<byte[]> Mutants()
        {
            var random = new Random(seed);
            for (int m = 0; m < mutants; m++)
            {
                byte[] mutant = (byte[])target.Clone();
                int edits = random.Next(1, 9);
                for (int k = 0; k < edits; k++)
                {
                    int at = random.Next(mutant.Length);
                    if (random.Next(2) == 0) mutant[at] ^= (byte)(1 << random.Next(8));
                    else mutant[at] = (byte)random.Next(256);
                }
                yield return rezip ? Rewrite(good, replace: (pklName, mutant)) : mutant;
            }
        }
        // The readers' harness: parse or InvalidDataException naming the source, each within the same time and
        // allocation limits as the other readers (a zip bomb or a huge declared size fails it).
        Fuzzer.Run<InvalidDataException>(output, "mutant.pth", [good], Mutants(), b => Pth.Parse(b, "mutant.pth"));
    }

    // ---- Building archives and pickles ----

    /// <summary>A zip in torch's layout, entries stored uncompressed.</summary>
    private static byte[] Zip(params (string Name, byte[] Data)[] entries)
    {
        using var stream = new MemoryStream();
        using (var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return stream.ToArray();
    }

    private static Dictionary<string, byte[]> Entries(byte[] zipBytes)
    {
        using var zip = new ZipArchive(new MemoryStream(zipBytes), ZipArchiveMode.Read);
        return zip.Entries.ToDictionary(e => e.FullName, e =>
        {
            using var s = e.Open();
            using var copy = new MemoryStream();
            s.CopyTo(copy);
            return copy.ToArray();
        });
    }

    /// <summary>A copy of an archive with one entry replaced, dropped, or added (in the original order otherwise).</summary>
    private static byte[] Rewrite(byte[] zipBytes, (string Name, byte[] Data)? replace = null, string? drop = null,
        (string Name, byte[] Data)? add = null)
    {
        var entries = Entries(zipBytes).Where(kv => kv.Key != drop)
            .Select(kv => (kv.Key, kv.Key == replace?.Name ? replace.Value.Data : kv.Value)).ToList();
        if (add is { } extra) entries.Add(extra);
        return Zip(entries.ToArray());
    }

    /// <summary>
    /// The pickle torch.save writes for <c>OrderedDict(w=tensor)</c>, the tensor a float32 view (offset, size, stride) of
    /// storage '0' declared with <paramref name="numel"/> elements. Ints go in as 8-byte LONG1 so any long fits.
    /// </summary>
    private static byte[] TensorPickle(long[] size, long[] stride, long numel, long offset = 0)
    {
        var p = new Pickle().Global("collections", "OrderedDict").Op(')').Op('R')
            .Str("w").Global("torch._utils", "_rebuild_tensor_v2").Op('(')
            .Op('(').Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Long(numel).Op('t').Op('Q')
            .Long(offset);
        p.Op('(');
        foreach (long s in size) p.Long(s);
        p.Op('t').Op('(');
        foreach (long s in stride) p.Long(s);
        p.Op('t').Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R').Op('t').Op('R').Op('s');
        return p.Stop();
    }

    /// <summary>Writes pickle opcodes by hand (protocol 2).</summary>
    private sealed class Pickle
    {
        private readonly List<byte> _bytes = [0x80, 2];

        public Pickle Op(char op) => Byte((byte)op);

        public Pickle Op(byte op) => Byte(op);

        public Pickle Byte(byte b)
        {
            _bytes.Add(b);
            return this;
        }

        public Pickle Global(string module, string name)
        {
            _bytes.Add((byte)'c');
            _bytes.AddRange(Encoding.UTF8.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        public Pickle Str(string s)
        {
            var utf8 = Encoding.UTF8.GetBytes(s);
            _bytes.Add((byte)'X');
            _bytes.AddRange(BitConverter.GetBytes(utf8.Length));
            _bytes.AddRange(utf8);
            return this;
        }

        public Pickle Int(byte value) => Op('K').Byte(value);

        public Pickle Long(long value)
        {
            var le = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(le, value);
            _bytes.Add(0x8a);
            _bytes.Add(8);
            _bytes.AddRange(le);
            return this;
        }

        public byte[] Build() => _bytes.ToArray();

        public byte[] Stop() => Op('.').Build();
    }
}

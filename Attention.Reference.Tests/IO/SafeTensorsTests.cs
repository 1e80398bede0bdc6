using System.Buffers.Binary;
using System.Text;
using Attention.Reference.IO;

namespace Attention.Reference.Tests.IO;

public class SafeTensorsTests
{
    private static byte[] File(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)h.Length);
        h.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + h.Length);
        return bytes;
    }

    private static string Message(byte[] bytes) => Assert.Throws<InvalidDataException>(() => SafeTensors.Parse(bytes, "t.safetensors")).Message;

    [Fact]
    public void RoundTripsFloat64Exactly()
    {
        var set = new TensorSet<double>();
        set.Set("x", new DenseTensor<double>([1.5, -0.0, double.Epsilon, double.MaxValue, Math.PI, 1e-300], 1, 2, 3, 1));
        set.Set("b", new DenseTensor<double>([42.0], 1));
        set.Set("empty", new DenseTensor<double>(0, 3));
        var back = SafeTensors.Parse(SafeTensors.Serialize(set)).ToTensorSet<double>("back");
        Assert.Equal(["x", "b", "empty"], back.Names);
        foreach (var (name, t) in set) Bitwise.AssertIdentical(t, back.Get(name), name);
    }

    [Fact]
    public void RoundTripsFloat32Exactly()
    {
        var set = new TensorSet<float>();
        set.Set("w", new DenseTensor<float>([0.1f, float.MinValue, float.Epsilon, -3f], 2, 2));
        var stored = SafeTensors.Parse(SafeTensors.Serialize(set));
        Assert.Equal(StoredDType.F32, stored[0].DType);
        Bitwise.AssertIdentical(set.Get("w"), stored.ToTensorSet<float>("s").Get("w"), "w");
    }

    [Fact]
    public void HeaderIsPaddedToEightBytes()
    {
        var set = new TensorSet<double>();
        set.Set("abc", new DenseTensor<double>(3));
        var bytes = SafeTensors.Serialize(set);
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes) % 8);
    }

    [Fact]
    public void ReadsF16AndBF16ByExactWidening()
    {
        var data = new byte[8];
        BinaryPrimitives.WriteHalfLittleEndian(data, (Half)1.5);
        BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(2), (Half)(-0.000061035156));
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(4), (ushort)(BitConverter.SingleToInt32Bits(3.140625f) >> 16));
        BinaryPrimitives.WriteUInt16LittleEndian(data.AsSpan(6), (ushort)(BitConverter.SingleToInt32Bits(-2f) >> 16));
        var t = SafeTensors.Parse(File("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}", data));
        Assert.Equal([1.5, (double)(Half)(-0.000061035156)], t.Single(x => x.Name == "h").Values);
        Assert.Equal([3.140625, -2.0], t.Single(x => x.Name == "b").Values);
    }

    [Fact]
    public void AcceptsMetadataAndAnyHeaderOrder()
    {
        var data = new byte[16];
        BinaryPrimitives.WriteDoubleLittleEndian(data, 7);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8), 9);
        var t = SafeTensors.Parse(File("{\"b\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[8,16]},\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", data));
        Assert.Equal(["a", "b"], t.Select(x => x.Name));
        Assert.Equal(9.0, t[1].Values[0]);
    }

    [Fact]
    public void RejectsTooShortFile() => Assert.Contains("too short", Message([1, 2, 3]));

    [Fact]
    public void RejectsHeaderOverTheSizeCap()
    {
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 100_000_001);
        Assert.Contains("exceeds the 100000000-byte limit", Message(bytes));
    }

    [Fact]
    public void RejectsHeaderPastEndOfFile()
    {
        var bytes = File("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, 50);
        Assert.Contains("runs past the end", Message(bytes));
    }

    [Fact]
    public void RejectsHeaderNotStartingWithBrace() => Assert.Contains("does not start with '{'", Message(File(" {}", [])));

    [Fact]
    public void RejectsMalformedJson() => Assert.Contains("not valid JSON", Message(File("{\"x\":", [])));

    [Fact]
    public void RejectsUnknownDType() =>
        Assert.Contains("dtype \"U32\"", Message(File("{\"x\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8])));

    [Fact]
    public void ReadsIntegerTensorsButRefusesThemWhereFloatsAreNeeded()
    {
        var bytes = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(bytes, -7);
        var t = Assert.Single(SafeTensors.Parse(File("{\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}}", bytes)));
        Assert.Equal(StoredDType.I64, t.DType);
        Assert.Equal([-7.0], t.Values);
        Assert.Contains("stored as I64", Assert.Throws<InvalidDataException>(() => t.ToTensor<double>()).Message);
    }

    [Fact]
    public void RejectsOffsetsOutsideTheBuffer() =>
        Assert.Contains("beyond the 8-byte data buffer", Message(File("{\"x\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", new byte[8])));

    [Fact]
    public void RejectsOverlaps() =>
        Assert.Contains("overlaps", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}", new byte[16])));

    [Fact]
    public void RejectsGaps() =>
        Assert.Contains("gap before tensor 'b'", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[16,24]}}", new byte[24])));

    [Fact]
    public void RejectsShapeTimesDTypeSizeMismatch() =>
        Assert.Contains("shape [3] of F64 (24 bytes) but offsets [0, 16] hold 16 bytes", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,16]}}", new byte[16])));

    [Fact]
    public void RejectsTrailingBytesNotCoveredByTensors() =>
        Assert.Contains("buffer is 16 bytes but the tensors cover 8", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[16])));

    [Fact]
    public void RejectsNegativeDimensionsAndReversedOffsets()
    {
        Assert.Contains("non-negative integers", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[-1],\"data_offsets\":[0,8]}}", new byte[8])));
        Assert.Contains("end 0 before begin 8", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,0]}}", new byte[8])));
    }

    [Fact]
    public void RejectsDuplicateNamesAndMissingFields()
    {
        Assert.Contains("appears twice", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]}}", new byte[16])));
        Assert.Contains("needs dtype, shape and data_offsets", Message(File("{\"a\":{\"dtype\":\"F64\",\"shape\":[1]}}", [])));
    }

    private static byte[] RawFile(byte[] header, byte[] data) =>
        [.. BitConverter.GetBytes((ulong)header.Length), .. header, .. data];

    [Fact]
    public void RejectsAByteSizeThatOverflows64Bits()
    {
        // 2^30 · 2^30 · 2 elements fit a long, but · 8 bytes wraps to 0, which the empty offsets [0, 0] would match.
        string m = Message(File("{\"x\":{\"dtype\":\"F64\",\"shape\":[1073741824,1073741824,2],\"data_offsets\":[0,0]}}", []));
        Assert.StartsWith("t.safetensors: ", m);
        Assert.Contains("tensor 'x'", m);
        Assert.Contains("overflows", m);
    }

    [Fact]
    public void RejectsAnElementCountThatOverflows64BitsNamingTheFile()
    {
        const int big = int.MaxValue;
        string m = Message(File($"{{\"x\":{{\"dtype\":\"U8\",\"shape\":[{big},{big},{big}],\"data_offsets\":[0,0]}}}}", []));
        Assert.StartsWith("t.safetensors: ", m);
        Assert.Contains("tensor 'x'", m);
        Assert.Contains("overflows", m);
    }

    [Theory]
    [InlineData("[0,5]")]
    [InlineData("[5,0]")]
    [InlineData("[0]")]
    [InlineData("[3,0,7]")]
    [InlineData("[0,2147483647,2147483647,2147483647]")]
    [InlineData("[2147483647,2147483647,2147483647,0]")]
    public void ReadsZeroElementTensors(string shape)
    {
        var t = SafeTensors.Parse(File(
            $"{{\"e\":{{\"dtype\":\"F32\",\"shape\":{shape},\"data_offsets\":[0,0]}},"
            + "\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", new byte[8]), "t.safetensors");
        var e = t.Single(x => x.Name == "e");
        Assert.Equal(System.Text.Json.JsonSerializer.Deserialize<int[]>(shape), e.Shape);
        Assert.Empty(e.Values);
        Assert.Equal(0, e.ToTensor<double>().Length);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]                 // never valid in UTF-8
    [InlineData(new byte[] { 0xC3 })]                 // a lead byte with no continuation
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })]     // a surrogate encoded directly (CESU-8), refused by UTF-8
    [InlineData(new byte[] { 0xC0, 0xAF })]           // an overlong encoding
    public void RejectsInvalidUtf8InTensorNamesFieldsDTypesAndMetadata(byte[] bad)
    {
        const string entry = "\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]";
        string[] headers =
        [
            "{\"a\u0001\":{" + entry + "}}",                                  // tensor name
            "{\"a\":{\"\u0001\":1," + entry + "}}",                          // field name
            "{\"a\":{\"dtype\":\"F\u0001\",\"shape\":[1],\"data_offsets\":[0,8]}}",   // dtype
            "{\"__metadata__\":{\"k\":\"v\u0001\"},\"a\":{" + entry + "}}",          // metadata value
            "{\"__metadata__\":{\"k\u0001\":\"v\"},\"a\":{" + entry + "}}",          // metadata key
        ];
        foreach (string h in headers)
        {
            // Splice the raw bytes in where the placeholder \u0001 stands.
            byte[] text = Encoding.UTF8.GetBytes(h);
            int at = Array.IndexOf(text, (byte)1);
            byte[] header = [.. text[..at], .. bad, .. text[(at + 1)..]];
            var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Parse(RawFile(header, new byte[8]), "t.safetensors"));
            Assert.StartsWith("t.safetensors: ", e.Message);
            Assert.Contains("header is not valid UTF-8", e.Message);
        }
    }

    [Theory]
    [InlineData("\\ud800")]          // a lone high surrogate
    [InlineData("\\udc00")]          // a lone low surrogate
    [InlineData("\\ud800\\u0041")]   // a high surrogate followed by a non-surrogate
    public void RejectsLoneSurrogateEscapesInNamesFieldsDTypesAndMetadata(string escape)
    {
        const string entry = "\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]";
        string[] headers =
        [
            "{\"a@\":{" + entry + "}}",
            "{\"a\":{\"@\":1," + entry + "}}",
            "{\"a\":{\"dtype\":\"F@\",\"shape\":[1],\"data_offsets\":[0,8]}}",
            "{\"__metadata__\":{\"k\":\"v@\"},\"a\":{" + entry + "}}",
            "{\"__metadata__\":{\"k@\":\"v\"},\"a\":{" + entry + "}}",
        ];
        foreach (string h in headers)
        {
            var e = Assert.Throws<InvalidDataException>(() =>
                SafeTensors.Parse(File(h.Replace("@", escape), new byte[8]), "t.safetensors"));
            Assert.StartsWith("t.safetensors: ", e.Message);
            Assert.Contains("contains an invalid escape", e.Message);
        }
    }

    [Fact]
    public void AcceptsEscapedSurrogatePairsAndNonAsciiNames()
    {
        // The first name and the metadata value are JSON escapes (a valid pair); the others are raw UTF-8.
        const string f64 = "\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":";
        var t = SafeTensors.Parse(File(
            "{\"__metadata__\":{\"\u00e9\":\"\\ud83d\\ude00\"},\"\\ud83d\\ude00\\u00e9\":{" + f64 + "[0,8]},"
            + "\"\u00fc\U0001F600\":{" + f64 + "[8,16]}}", new byte[16]), "t.safetensors", out var metadata);
        Assert.Equal(["\U0001F600\u00e9", "\u00fc\U0001F600"], t.Select(x => x.Name));
        Assert.Equal("\U0001F600", metadata["\u00e9"]);
    }

    [Theory]
    [InlineData("dtype", "\"F64\"")]
    [InlineData("shape", "[1]")]
    [InlineData("data_offsets", "[0,8]")]
    public void RejectsAFieldGivenTwiceInOneEntry(string field, string value)
    {
        string m = Message(File(
            $"{{\"a\":{{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8],\"{field}\":{value}}}}}", new byte[8]));
        Assert.StartsWith("t.safetensors: ", m);
        Assert.Contains($"tensor 'a' has field '{field}' twice", m);
    }

    [Fact]
    public void ReadsEveryGoldenFile()
    {
        foreach (var file in Directory.GetFiles(GoldenPack.Folder, "*.safetensors", SearchOption.AllDirectories))
            Assert.NotEmpty(SafeTensors.Read(file));
    }

    [Fact]
    public void FailedWriteLeavesNoFileBehind()
    {
        string dir = Directory.CreateTempSubdirectory().FullName;
        string path = Path.Combine(dir, "out.safetensors");
        // The writer's own exception reaches the caller unchanged (not wrapped, not replaced by a cleanup error).
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new IOException("disk full"); }));
        Assert.Equal("disk full", e.Message);
        Assert.Empty(Directory.GetFiles(dir));
        Directory.Delete(dir, true);
    }
}

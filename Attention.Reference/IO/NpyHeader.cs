using System.Text;

namespace Attention.Reference.IO;

/// <summary>
/// Reads the header of a .npy file: a Python dict literal such as
/// <c>{'descr': '&lt;f8', 'fortran_order': False, 'shape': (2, 3), }</c>, padded with spaces and ending in '\n'. numpy
/// evaluates it with <c>ast.literal_eval</c>; this reads the literals numpy writes (keys in any order, either quote,
/// optional trailing commas, whitespace between tokens) in one forward pass with no backtracking, so its time is linear
/// in the header's length, which may be 64 KB in version 1.0 and 4 GB in 2.0. It refuses what numpy refuses (a missing,
/// unknown or non-tuple value, <c>(3)</c>, <c>(,)</c>, <c>(03,)</c>, non-ASCII text) and, stricter than numpy, what
/// numpy never writes though <c>literal_eval</c> takes it: repeated keys (the last would win), comments, escapes, string
/// prefixes, <c>+3</c>, <c>3_0</c>, <c>True</c> as a dimension, Python 2's <c>3L</c>; and dimensions over 2^31 - 1.
/// </summary>
internal ref struct NpyHeader
{
    private readonly ReadOnlySpan<byte> _text;
    private readonly string _source;
    private int _at;

    private NpyHeader(ReadOnlySpan<byte> text, string source)
    {
        _text = text;
        _source = source;
    }

    /// <summary>Parses the header bytes (after the length field) of the file named by <paramref name="source"/>.</summary>
    /// <exception cref="InvalidDataException">The header is not such a dict literal; the message says where and why.</exception>
    public static (string Descr, bool FortranOrder, int[] Shape) Parse(ReadOnlySpan<byte> text, string source) =>
        new NpyHeader(text, source).Parse();

    private (string, bool, int[]) Parse()
    {
        // Python's tokenizer knows only these as whitespace; .NET's \s and Trim() also took Latin-1 0x85 and 0xA0.
        for (int i = 0; i < _text.Length; i++)
        {
            byte b = _text[i];
            if (b is (< 0x20 or > 0x7E) and not (byte)'\t' and not (byte)'\n' and not (byte)'\r' and not (byte)'\f')
                throw Npy.Bad(_source, $"header byte {i} is 0x{b:X2}; a .npy header is printable ASCII and whitespace");
        }
        string? descr = null;
        bool? fortranOrder = null;
        int[]? shape = null;
        SkipSpace();
        Expect('{', "the header must be a dict literal starting with '{'");
        SkipSpace();
        while (Peek() != '}')
        {
            string key = ReadString("expected a quoted key ('descr', 'fortran_order' or 'shape') or '}'");
            if (key is not ("descr" or "fortran_order" or "shape"))
                throw Npy.Bad(_source,
                    $"header has an unknown key {Quote(key)}; a .npy header has exactly 'descr', 'fortran_order' and 'shape'");
            if ((key == "descr" && descr is not null) || (key == "fortran_order" && fortranOrder is not null)
                || (key == "shape" && shape is not null))
                throw Npy.Bad(_source, $"header has '{key}' twice");
            SkipSpace();
            Expect(':', $"expected ':' after the key '{key}'");
            SkipSpace();
            switch (key)
            {
                case "descr":
                    descr = ReadString("'descr' must be a string such as '<f8' (structured dtypes are not supported)");
                    break;
                case "fortran_order":
                    fortranOrder = ReadBool();
                    break;
                default:
                    shape = ReadShape();
                    break;
            }
            SkipSpace();
            if (Peek() == ',')
            {
                _at++;
                SkipSpace();
            }
            else if (Peek() != '}') throw Fail($"expected ',' or '}}' after the value of '{key}'");
        }
        _at++;
        SkipSpace();
        if (_at != _text.Length) throw Fail("unexpected text after the closing '}'");
        string? missing = descr is null ? "descr" : fortranOrder is null ? "fortran_order" : shape is null ? "shape" : null;
        if (missing is not null)
            throw Npy.Bad(_source, $"header is not a dict with 'descr', 'fortran_order' and 'shape': missing '{missing}'");
        return (descr!, fortranOrder!.Value, shape!);
    }

    /// <summary>The next byte, or -1 at the end (a cursor never runs past the header).</summary>
    private readonly int Peek() => _at < _text.Length ? _text[_at] : -1;

    private void SkipSpace()
    {
        while (Peek() is ' ' or '\t' or '\n' or '\r' or '\f') _at++;
    }

    private void Expect(char c, string what)
    {
        if (Peek() != c) throw Fail(what);
        _at++;
    }

    /// <summary>A single- or double-quoted string without escapes; <paramref name="what"/> when none starts here.</summary>
    private string ReadString(string what)
    {
        int quote = Peek();
        if (quote is not ('\'' or '"')) throw Fail(what);
        int start = ++_at;
        while (true)
        {
            int c = Peek();
            if (c == quote) break;
            if (c is -1 or '\n' or '\r') throw Fail("a string is not closed on its line");
            if (c == '\\') throw Fail("escapes in strings are not supported (numpy writes none)");
            _at++;
        }
        return Encoding.ASCII.GetString(_text[start.._at++]);
    }

    private bool ReadBool()
    {
        int start = _at;
        while (Peek() is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '_') _at++;
        var word = _text[start.._at];
        if (word.SequenceEqual("True"u8)) return true;
        if (word.SequenceEqual("False"u8)) return false;
        _at = start;
        throw Fail("'fortran_order' must be True or False");
    }

    /// <summary>A tuple of non-negative integers: <c>()</c>, <c>(3,)</c>, <c>(2, 3)</c>, <c>(2, 3,)</c>.</summary>
    private int[] ReadShape()
    {
        if (Peek() != '(') throw Fail("'shape' is not a tuple; expected one such as (2, 3) or (3,)");
        int open = _at++;
        SkipSpace();
        var dims = new List<int>();
        bool comma = false;
        while (Peek() != ')')
        {
            dims.Add(ReadDimension());
            SkipSpace();
            if (Peek() == ',')
            {
                comma = true;
                _at++;
                SkipSpace();
            }
            else if (Peek() != ')') throw Fail("expected ',' or ')' between the entries of 'shape'");
        }
        _at++;
        // Python reads (3) as the integer 3; numpy refuses it as not a tuple.
        if (dims.Count == 1 && !comma)
        {
            _at = open;
            throw Fail($"'shape' is ({dims[0]}), an integer in parentheses, not a tuple; a 1-d shape is written ({dims[0]},)");
        }
        return dims.ToArray();
    }

    private int ReadDimension()
    {
        int start = _at;
        while (Peek() is >= '0' and <= '9') _at++;
        int length = _at - start;
        if (length == 0) throw Fail("'shape' must be a tuple of non-negative integers");
        var digits = _text[start.._at];
        _at = start; // messages below point at the entry
        // Python refuses 03 (an octal literal in Python 2) but takes 00 as 0.
        if (digits[0] == '0' && digits.ContainsAnyExcept((byte)'0'))
            throw Fail("an entry of 'shape' has a leading zero, which Python does not allow");
        // Ten digits cover int.MaxValue; longer runs are too large whatever they hold, and are not parsed.
        long value = 0;
        if (length <= 10)
            foreach (byte d in digits) value = value * 10 + (d - '0');
        if (length > 10 || value > int.MaxValue)
        {
            string shown = length > 24
                ? Encoding.ASCII.GetString(digits[..20]) + $"... ({length} digits)"
                : Encoding.ASCII.GetString(digits);
            throw Fail($"an entry of 'shape', {shown}, is too large (the most is {int.MaxValue})");
        }
        _at += length;
        return (int)value;
    }

    private readonly InvalidDataException Fail(string what)
    {
        int c = Peek();
        string found = c == -1 ? "the end of the header" : c is >= 0x21 and <= 0x7E ? $"'{(char)c}'" : $"byte 0x{c:X2}";
        return Npy.Bad(_source, $"{what}: at header byte {_at}, found {found}");
    }

    /// <summary>A key for a message, shortened: a header may be 4 GB.</summary>
    private static string Quote(string s) => s.Length <= 40 ? $"'{s}'" : $"'{s[..40]}...' ({s.Length} characters)";
}

namespace Loop.Docker;

using System.Text;

/// <summary>Turns UTF-8 chunks into lines; a character or a line may span chunks.</summary>
internal sealed class Utf8LineSplitter
{
    private readonly Decoder _decoder = new UTF8Encoding(false).GetDecoder();
    private readonly StringBuilder _line = new();

    public IReadOnlyList<string> Push(ReadOnlySpan<byte> bytes)
    {
        var chars = new char[_decoder.GetCharCount(bytes, flush: false)];
        _decoder.GetChars(bytes, chars, flush: false);
        var lines = new List<string>();
        foreach (var c in chars)
        {
            if (c == '\n')
            {
                lines.Add(TakeLine());
            }
            else
            {
                _line.Append(c);
            }
        }

        return lines;
    }

    /// <summary>The unterminated last line, if any, once the stream has ended.</summary>
    public string? Flush()
    {
        var rest = new char[_decoder.GetCharCount([], flush: true)];
        _decoder.GetChars([], rest, flush: true);
        _line.Append(rest);
        return _line.Length == 0 ? null : TakeLine();
    }

    private string TakeLine()
    {
        if (_line.Length > 0 && _line[^1] == '\r')
        {
            _line.Length--;
        }

        var line = _line.ToString();
        _line.Clear();
        return line;
    }
}

/// <summary>Keeps the last <c>capacity</c> bytes of a stream (the end of stderr is what explains a failure).</summary>
internal sealed class TailBuffer(int capacity)
{
    private readonly byte[] _buffer = new byte[capacity];
    private int _length;

    public void Push(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length >= capacity)
        {
            bytes[^capacity..].CopyTo(_buffer);
            _length = capacity;
            return;
        }

        var overflow = Math.Max(0, _length + bytes.Length - capacity);
        if (overflow > 0)
        {
            _buffer.AsSpan(overflow, _length - overflow).CopyTo(_buffer);
            _length -= overflow;
        }

        bytes.CopyTo(_buffer.AsSpan(_length));
        _length += bytes.Length;
    }

    public override string ToString()
    {
        var span = _buffer.AsSpan(0, _length);
        // Cutting may have split a character: drop its orphaned continuation bytes.
        while (span.Length > 0 && (span[0] & 0xC0) == 0x80)
        {
            span = span[1..];
        }

        return Encoding.UTF8.GetString(span);
    }
}

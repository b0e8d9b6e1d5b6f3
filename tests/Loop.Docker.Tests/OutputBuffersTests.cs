namespace Loop.Docker.Tests;

using System.Text;

public sealed class OutputBuffersTests
{
    [Fact]
    public void Lines_and_characters_split_across_chunks_are_joined()
    {
        var bytes = Encoding.UTF8.GetBytes("añb\r\nc€d\n\ntail");
        var splitter = new Utf8LineSplitter();
        var lines = new List<string>();

        foreach (var b in bytes)
        {
            lines.AddRange(splitter.Push([b]));
        }

        Assert.Equal(["añb", "c€d", ""], lines);
        Assert.Equal("tail", splitter.Flush());
        Assert.Null(splitter.Flush());
    }

    [Fact]
    public void The_tail_keeps_the_last_bytes_and_never_a_broken_character()
    {
        var tail = new TailBuffer(8);

        tail.Push("héllo"u8);
        tail.Push(" wörld"u8);

        Assert.Equal("wörld", tail.ToString()[^5..]);
        Assert.True(Encoding.UTF8.GetByteCount(tail.ToString()) <= 8);
        Assert.DoesNotContain('\uFFFD', tail.ToString());
    }
}

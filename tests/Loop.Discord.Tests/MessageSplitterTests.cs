namespace Loop.Discord.Tests;

using Loop.Runtime;

public sealed class MessageSplitterTests
{
    [Fact]
    public void A_short_text_is_one_part()
    {
        Assert.Equal(["hello"], MessageSplitter.Split("hello"));
    }

    [Fact]
    public void Paragraph_boundaries_are_preferred_over_lines_and_words()
    {
        var first = string.Join("\n", Enumerable.Repeat(new string('a', 99), 12)); // 1,199 characters of lines
        var second = string.Join(" ", Enumerable.Repeat("word", 300));             // 1,499 characters of words
        var parts = MessageSplitter.Split(first + "\n\n" + second);

        Assert.Equal(first, parts[0]);
        Assert.All(parts, p => Assert.True(p.Length <= 2000));
        Assert.Equal(second, string.Join(" ", parts.Skip(1)));
    }

    [Fact]
    public void A_long_word_is_cut_hard_when_there_is_no_boundary()
    {
        var parts = MessageSplitter.Split(new string('x', 4500));

        Assert.All(parts, p => Assert.True(p.Length <= 2000));
        Assert.Equal(new string('x', 4500), string.Concat(parts));
    }

    [Fact]
    public void A_code_block_cut_in_two_is_closed_and_reopened_with_its_language()
    {
        var code = string.Join("\n", Enumerable.Range(0, 200).Select(i => $"print({i})"));
        var parts = MessageSplitter.Split("Intro\n```python\n" + code + "\n```\nOutro");

        Assert.True(parts.Count >= 2);
        Assert.All(parts, p => Assert.True(p.Length <= 2000));
        Assert.EndsWith("\n```", parts[0]);
        Assert.All(parts.Skip(1), p => Assert.StartsWith("```python\n", p));
        Assert.EndsWith("```\nOutro", parts[^1]);
        var lines = parts.SelectMany(p => p.Split('\n')).Where(l => l.StartsWith("print(", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"print({i})"), lines);
    }
}

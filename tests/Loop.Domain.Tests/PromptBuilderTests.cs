namespace Loop.Domain.Tests;

using Loop.Domain.Channels;

public sealed class PromptBuilderTests
{
    private static ChatMessage Message(long id, string author, string content) =>
        new(id, "ch_1", MessageRole.User, author, content, DateTimeOffset.UnixEpoch, null);

    [Fact]
    public void Each_message_is_a_line_led_by_its_author_in_arrival_order()
    {
        var prompt = PromptBuilder.Build([Message(1, "alice", "fix the build"), Message(2, "bob", "and the tests\nplease")]);
        Assert.Equal("alice: fix the build\nbob: and the tests\nplease", prompt);
    }

    [Fact]
    public void Ids_sort_by_creation_time_and_do_not_collide()
    {
        var time = new ManualTimeProvider();
        var first = Ids.New("run", time);
        time.Advance(TimeSpan.FromMilliseconds(1));
        var ids = Enumerable.Range(0, 1000).Select(_ => Ids.New("run", time)).ToList();
        Assert.All(ids, id => Assert.True(string.CompareOrdinal(first, id) < 0));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.StartsWith("run_", first);
    }
}

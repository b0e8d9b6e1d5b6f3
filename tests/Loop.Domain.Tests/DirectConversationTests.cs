namespace Loop.Domain.Tests;

using Loop.Config;
using Loop.Domain.Agents;
using Loop.Domain.Channels;
using Loop.Domain.Runs;

/// <summary>What a direct channel sends the Messages API: its stored conversation as alternating turns,
/// cut to the model's window; where a conversation starts; and what a reply costs.</summary>
public sealed class DirectConversationTests
{
    private static long _ids;

    private static ChatMessage Said(MessageRole role, string content, string author = "alice", string? runId = "run_1") =>
        new(++_ids, "ch_1", role, role == MessageRole.User ? author : role == MessageRole.Agent ? "agent" : "loop", content, DateTimeOffset.UnixEpoch, runId);

    private static (TurnRole, string)[] Turns(IReadOnlyList<ConversationTurn> turns) => turns.Select(t => (t.Role, t.Text)).ToArray();

    [Fact]
    public void The_conversation_alternates_from_the_user_and_ends_with_the_prompt_each_message_led_by_its_author()
    {
        var earlier = new[]
        {
            Said(MessageRole.User, "what is a monad?"),
            Said(MessageRole.Agent, "A monoid in the category of endofunctors."),
            Said(MessageRole.User, "and in plain words?", author: "bob"),
            Said(MessageRole.Agent, "A way to chain steps."),
        };

        var turns = DirectConversation.Build(earlier, "alice: thanks!", 10_000);

        Assert.Equal(
        [
            (TurnRole.User, "alice: what is a monad?"),
            (TurnRole.Assistant, "A monoid in the category of endofunctors."),
            (TurnRole.User, "bob: and in plain words?"),
            (TurnRole.Assistant, "A way to chain steps."),
            (TurnRole.User, "alice: thanks!"),
        ], Turns(turns));
    }

    [Fact]
    public void Loops_own_notes_are_left_out_and_what_they_leave_next_to_each_other_is_one_turn()
    {
        var earlier = new[]
        {
            Said(MessageRole.User, "first"),
            Said(MessageRole.User, "second, in the same run"),
            Said(MessageRole.Agent, "both answered"),
            Said(MessageRole.User, "this run failed"),
            Said(MessageRole.System, "The agent run failed: the Anthropic API refused the call with 529 overloaded_error"),
        };

        var turns = DirectConversation.Build(earlier, "alice: again?", 10_000);

        Assert.Equal(
        [
            (TurnRole.User, "alice: first\nalice: second, in the same run"),
            (TurnRole.Assistant, "both answered"),
            (TurnRole.User, "alice: this run failed\nalice: again?"),
        ], Turns(turns));
    }

    [Fact]
    public void The_oldest_turns_give_way_when_the_window_is_full_and_the_rest_still_opens_with_the_user()
    {
        var old = new string('o', 3_000);
        var earlier = new[]
        {
            Said(MessageRole.User, old),
            Said(MessageRole.Agent, "short answer"),
            Said(MessageRole.User, "recent question"),
            Said(MessageRole.Agent, "recent answer"),
        };
        var all = DirectConversation.Build(earlier, "alice: now", 100_000);
        Assert.Equal(5, all.Count);

        // Room for the last three turns and not the old one (1,000 tokens): its answer, left leading, goes too.
        var trimmed = DirectConversation.Build(earlier, "alice: now", 500);

        Assert.Equal(
        [
            (TurnRole.User, "alice: recent question"),
            (TurnRole.Assistant, "recent answer"),
            (TurnRole.User, "alice: now"),
        ], Turns(trimmed));
    }

    [Fact]
    public void The_prompt_is_sent_even_when_it_alone_is_larger_than_the_window()
    {
        var earlier = new[] { Said(MessageRole.User, "hello"), Said(MessageRole.Agent, "hi") };
        var prompt = "alice: " + new string('x', 30_000);

        var turns = DirectConversation.Build(earlier, prompt, 1_000);

        Assert.Equal([(TurnRole.User, prompt)], Turns(turns));
    }

    [Fact]
    public void The_window_leaves_room_for_the_reply_and_the_system_prompt()
    {
        var system = new string('s', 3_000);
        Assert.Equal(DirectConversation.ContextWindowTokens - DirectConversation.ReplyTokens - 1_000, DirectConversation.BudgetFor(system));
    }

    [Theory]
    [InlineData("", 0)]
    [InlineData("abc", 1)]
    [InlineData("abcd", 2)]
    public void Tokens_are_estimated_at_one_per_three_bytes_rounded_up(string text, int tokens) =>
        Assert.Equal(tokens, DirectConversation.EstimateTokens(text));

    [Fact]
    public void The_estimate_errs_high_for_prose_and_for_scripts_of_many_bytes()
    {
        // English prose runs about 3.5 characters a token; a CJK character is about one token.
        var prose = string.Concat(Enumerable.Repeat("The quick brown fox jumps over the lazy dog. ", 100));
        Assert.True(DirectConversation.EstimateTokens(prose) >= prose.Length / 3.5);
        var chinese = new string('猫', 1_000);
        Assert.True(DirectConversation.EstimateTokens(chinese) >= 1_000);
    }

    [Fact]
    public void A_direct_session_says_where_its_conversation_starts()
    {
        var session = DirectSession.Since(42);
        Assert.True(DirectSession.IsDirect(session));
        Assert.Equal(42, DirectSession.Start(session));
        // No session: a new conversation; Claude Code's session (the channel ran in a container): all of it.
        Assert.Null(DirectSession.Start(null));
        Assert.False(DirectSession.IsDirect("0d6b1f3e-8a52-4c3e-9d7e-2f1b6a9c4e21"));
        Assert.Equal(0, DirectSession.Start("0d6b1f3e-8a52-4c3e-9d7e-2f1b6a9c4e21"));
    }

    [Theory]
    [InlineData("container", ChannelMode.Container)]
    [InlineData("Direct", ChannelMode.Direct)]
    [InlineData(" DIRECT ", ChannelMode.Direct)]
    [InlineData("api", null)]
    [InlineData("", null)]
    public void A_mode_is_read_in_any_case(string text, ChannelMode? mode) => Assert.Equal(mode, ChannelAgent.ParseMode(text));

    [Theory]
    [InlineData("claude-sonnet-4-5")]
    [InlineData("claude-sonnet-4-5-20250929")]
    [InlineData("sonnet")]
    [InlineData("sonnet[1m]")]
    [InlineData("anthropic.claude-3-5-sonnet-20240620-v1:0")]
    public void Model_names_and_aliases_are_accepted(string model) => Assert.Null(ChannelAgent.ModelProblem(model));

    [Theory]
    [InlineData("--dangerously-skip-permissions")]
    [InlineData("claude sonnet")]
    [InlineData("")]
    [InlineData("claude\nsonnet")]
    public void A_model_that_could_pass_for_an_option_or_holds_spaces_is_refused(string model) =>
        Assert.NotNull(ChannelAgent.ModelProblem(model));

    [Fact]
    public void A_model_longer_than_its_limit_is_refused() =>
        Assert.Contains("1 to 100 characters", ChannelAgent.ModelProblem(new string('a', 101)));

    [Fact]
    public void A_reply_is_priced_at_its_models_rates_the_dated_name_included()
    {
        var prices = new PriceTable(ModelPrices.Defaults);
        var usage = new RunUsage(InputTokens: 1_000, OutputTokens: 500, CacheCreationInputTokens: 200, CacheReadInputTokens: 300, 0m, 1, 0);

        // claude-sonnet-4-5: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million tokens.
        Assert.Equal(0.01134m, prices.CostOf("claude-sonnet-4-5-20250929", usage));
        // claude-haiku-4-5: $1, $5, $1.25, $0.10.
        Assert.Equal(0.00378m, prices.CostOf("claude-haiku-4-5", usage));
        Assert.Null(prices.CostOf("a-model-without-a-price", usage));
    }
}

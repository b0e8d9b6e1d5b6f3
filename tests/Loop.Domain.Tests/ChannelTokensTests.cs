namespace Loop.Domain.Tests;

using Loop.Runtime;

public sealed class ChannelTokensTests
{
    [Fact]
    public void A_runs_token_names_its_channel_until_the_run_ends()
    {
        var tokens = new ChannelTokens();
        var first = tokens.MintForRun("ch_a", "run_1");
        var second = tokens.MintForRun("ch_a", "run_2");

        Assert.NotEqual(first, second);
        Assert.Equal("ch_a", tokens.ChannelOf(first));
        tokens.EndRun("run_1");
        Assert.Null(tokens.ChannelOf(first));
        Assert.Equal("ch_a", tokens.ChannelOf(second));
    }

    [Fact]
    public void Revoking_a_channel_ends_its_tokens_and_no_others()
    {
        var tokens = new ChannelTokens();
        var a1 = tokens.MintForRun("ch_a", "run_1");
        var a2 = tokens.MintForRun("ch_a", "run_2");
        var b = tokens.MintForRun("ch_b", "run_3");

        Assert.Equal(2, tokens.RevokeChannel("ch_a"));
        Assert.Null(tokens.ChannelOf(a1));
        Assert.Null(tokens.ChannelOf(a2));
        Assert.Equal("ch_b", tokens.ChannelOf(b));
    }

    [Theory]
    [InlineData("")]
    [InlineData("loopch.")]
    [InlineData("loopch.ch_a.forged")]
    [InlineData("loopat_something")]
    public void Unknown_and_forged_tokens_name_no_channel(string token)
    {
        var tokens = new ChannelTokens();
        tokens.MintForRun("ch_a", "run_1");

        Assert.Null(tokens.ChannelOf(token));
    }
}

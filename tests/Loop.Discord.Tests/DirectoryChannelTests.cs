namespace Loop.Discord.Tests;

using Loop.Runtime;

/// <summary><c>loop mcp --dir</c> registers a channel for a directory: with discord_guild_id set, it
/// gets a Discord text channel of its own, where its runs report.</summary>
public sealed class DirectoryChannelTests
{
    [Fact]
    public async Task A_directory_gets_a_guild_text_channel_once_and_its_runs_report_there()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord, c => c with { DiscordGuildId = DiscordDouble.GuildId });
        await discord.WaitForReadyAsync();
        var project = Directory.CreateTempSubdirectory("loop-dir-").FullName;
        var dir = Path.Combine(project, "My Web_App.v2");
        Directory.CreateDirectory(dir);

        var (channel, created) = await bot.Node.Channels.EnsureChannelAsync(Caller.User, dir, null, CancellationToken.None);

        Assert.True(created);
        var discordChannel = discord.GuildChannels.Single(c => (string?)c["name"] == "my-web_app-v2");
        Assert.Equal(0, (int)discordChannel["type"]!);
        Assert.Equal($"Loop agent for {dir}", (string?)discordChannel["topic"]);
        Assert.Equal(("discord", (string?)discordChannel["id"]), (channel.Platform, channel.ExternalId));

        var (again, createdAgain) = await bot.Node.Channels.EnsureChannelAsync(Caller.User, dir, null, CancellationToken.None);
        Assert.False(createdAgain);
        Assert.Equal(channel.Id, again.Id);
        Assert.Single(discord.Calls, c => c.Method == "POST" && c.Path == $"guilds/{DiscordDouble.GuildId}/channels");

        // An agent started from the IDE posts into the channel; its status, then the answer show up in Discord.
        await bot.Node.Channels.PostMessageAsync(Caller.User, channel.Id, "ide", "summarise the repo", CancellationToken.None);
        var posted = await discord.WaitForMessagesAsync(channel.ExternalId!, 2);
        Assert.Equal(2, posted.Count);
        Assert.StartsWith("⏳ Working…", (string)posted[0]["content"]!);
        var reply = posted[1];
        Assert.Equal("echo: ide: summarise the repo", (string)reply["content"]!);
        Assert.Null(reply["message_reference"]);
    }

    [Fact]
    public async Task An_existing_guild_channel_of_that_name_is_reused()
    {
        await using var discord = await DiscordDouble.StartAsync();
        discord.AddGuildChannel("420000000000000042", "backend");
        await using var bot = await BotHarness.StartAsync(discord, c => c with { DiscordGuildId = DiscordDouble.GuildId });
        var dir = Path.Combine(Directory.CreateTempSubdirectory("loop-dir-").FullName, "Backend");
        Directory.CreateDirectory(dir);

        var (channel, _) = await bot.Node.Channels.EnsureChannelAsync(Caller.User, dir, null, CancellationToken.None);

        Assert.Equal("420000000000000042", channel.ExternalId);
        Assert.DoesNotContain(discord.Calls, c => c.Method == "POST" && c.Path.StartsWith("guilds/", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Without_a_guild_id_no_discord_channel_is_created()
    {
        await using var discord = await DiscordDouble.StartAsync();
        await using var bot = await BotHarness.StartAsync(discord);
        var dir = Directory.CreateTempSubdirectory("loop-dir-").FullName;

        var (channel, created) = await bot.Node.Channels.EnsureChannelAsync(Caller.User, dir, null, CancellationToken.None);

        Assert.True(created);
        Assert.Null(channel.ExternalId);
        Assert.DoesNotContain(discord.Calls, c => c.Path.StartsWith("guilds/", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("/home/me/My Project", "my-project")]
    [InlineData("/srv/api.v2/", "api-v2")]
    [InlineData("/x/---", "loop")]
    [InlineData("/x/Ünïcode app", "ünïcode-app")]
    public void Channel_names_follow_discords_rules(string dir, string expected) =>
        Assert.Equal(expected, DiscordChatAdapter.ChannelNameFor(dir));
}

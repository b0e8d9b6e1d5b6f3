namespace Loop.Discord.Tests;

using System.Text.Json.Nodes;

/// <summary>A test with its own Discord double, an in-process node whose bot is connected to it, and the
/// bot's gateway connection to dispatch events on.</summary>
public abstract class BotTest : IAsyncLifetime
{
    protected const string General = DiscordDouble.GeneralChannel;

    protected DiscordDouble Discord { get; private set; } = null!;
    protected BotHarness Bot { get; private set; } = null!;
    protected GatewayConnection Gateway { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Discord = await DiscordDouble.StartAsync();
        Bot = await BotHarness.StartAsync(Discord);
        Gateway = await Discord.WaitForReadyAsync();
    }

    public async Task DisposeAsync()
    {
        await Bot.DisposeAsync();
        await Discord.DisposeAsync();
    }

    /// <summary>Dispatches a /loop interaction and returns what its deferred response was filled in with.</summary>
    protected async Task<string> AnswerOfAsync(JsonObject interaction, string what)
    {
        await Gateway.DispatchAsync("INTERACTION_CREATE", interaction);
        var original = $"webhooks/{DiscordDouble.AppId}/{(string)interaction["token"]!}/messages/@original";
        await Eventually.WaitAsync(() => Discord.Calls.Any(c => c.Path == original), $"the answer to /loop {what}");
        return (string)Discord.Calls.Single(c => c.Path == original).Body!["content"]!;
    }

    /// <summary>A /loop subcommand with text options, as Discord sends it.</summary>
    protected JsonObject Command(string subcommand, params (string Name, string Value)[] options) =>
        Discord.Interaction(General, new JsonArray(new JsonObject
        {
            ["name"] = subcommand,
            ["type"] = 1,
            ["options"] = new JsonArray(options.Select(o => (JsonNode)new JsonObject { ["name"] = o.Name, ["type"] = 3, ["value"] = o.Value }).ToArray()),
        }));
}

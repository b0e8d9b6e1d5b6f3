namespace Loop.Discord.Tests;

using System.Text.Json.Nodes;
using Loop.Runtime;

/// <summary>Owners and members of the Discord connector: members chat and read, owners change things,
/// others are turned away; without owners everyone may do everything and health says so.</summary>
public sealed class RoleTests : BotTest
{
    private const string Owner = DiscordDouble.UserId;
    private const string Member = "510000000000000051";
    private const string Stranger = "520000000000000052";
    private const string MemberRole = "530000000000000053";
    [Fact]
    public async Task Without_owners_health_warns_that_everyone_may_run_agents_and_with_them_it_does_not()
    {
        var health = Bot.Node.Get<NodeHealth>();
        Assert.Contains(health.Report().Warnings, w => w.StartsWith("connector discord has no owners: everyone in the servers its bot is in may run agents", StringComparison.Ordinal));

        await Bot.Node.Get<ConnectorService>().SetRolesAsync(Caller.User, "discord", [Owner], [MemberRole], CancellationToken.None);

        Assert.DoesNotContain(health.Report().Warnings, w => w.Contains("has no owners", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_member_may_chat_and_list_tasks_but_not_schedule_and_an_owner_may()
    {
        await Bot.Node.Get<ConnectorService>().SetRolesAsync(Caller.User, "discord", [Owner], [MemberRole], CancellationToken.None);

        Assert.Equal("❌ only an owner of this bot may use /loop schedule: members may chat, list tasks and see the status and budget",
            await CommandAsync(Member, [MemberRole], "schedule", ("schedule", "1h"), ("prompt", "tidy"), ("type", "interval")));
        Assert.StartsWith("No scheduled tasks", await CommandAsync(Member, [MemberRole], "tasks"));
        Assert.StartsWith("❌ only an owner of this bot may use /loop budget to set limits", await CommandAsync(Member, [MemberRole], "budget", ("daily", "100")));
        Assert.StartsWith("Scheduled task `", await CommandAsync(Owner, [], "schedule", ("schedule", "1h"), ("prompt", "tidy"), ("type", "interval")));
        Assert.StartsWith("❌ only this bot's owners and members may use /loop here", await CommandAsync(Stranger, [], "tasks"));

        // A member's message runs the agent.
        var message = Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> hello from a member", authorId: Member, authorName: "bob", mentionsBot: true);
        message["member"]!["roles"] = new JsonArray(MemberRole);
        await Gateway.DispatchAsync("MESSAGE_CREATE", message);
        await Discord.WaitForMessagesAsync(General, 1);
        Assert.Contains(Bot.Sandbox.Prompts, p => p.Contains("hello from a member", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_stranger_is_told_once_and_runs_nothing()
    {
        await Bot.Node.Get<ConnectorService>().SetRolesAsync(Caller.User, "discord", [Owner], [MemberRole], CancellationToken.None);

        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> let me in", authorId: Stranger, authorName: "eve", mentionsBot: true));
        var told = await Discord.WaitForMessagesAsync(General, 1);
        Assert.StartsWith("Sorry, I only take requests from this bot's owners and members.", (string)told[0]["content"]!);
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> please", authorId: Stranger, authorName: "eve", mentionsBot: true));
        // The owner's message after it is answered, and the stranger was not told twice nor run.
        await Gateway.DispatchAsync("MESSAGE_CREATE", Discord.MessageCreate(General, $"<@{DiscordDouble.BotId}> owner here", mentionsBot: true));
        var messages = await Discord.WaitForMessagesAsync(General, 2);
        Assert.Single(messages, m => ((string)m["content"]!).StartsWith("Sorry", StringComparison.Ordinal));
        Assert.DoesNotContain(Bot.Sandbox.Prompts, p => p.Contains("let me in", StringComparison.Ordinal) || p.Contains("please", StringComparison.Ordinal));
    }

    private Task<string> CommandAsync(string userId, string[] roles, string subcommand, params (string Name, string Value)[] options)
    {
        var interaction = Command(subcommand, options);
        interaction["member"]!["user"]!["id"] = userId;
        interaction["member"]!["roles"] = new JsonArray(roles.Select(r => (JsonNode)r).ToArray());
        return AnswerOfAsync(interaction, subcommand);
    }
}

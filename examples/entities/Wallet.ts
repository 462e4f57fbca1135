/**
 * A wallet entity in the event-sourced style: handlers emit events (`Deposited`, `Withdrawn`),
 * the state is the fold of `apply` over them, and a snapshot is written every 50 events so that
 * recovery reads the snapshot plus the tail. A withdrawal larger than the balance is a declared,
 * typed failure: the caller gets `InsufficientFunds` and nothing is written.
 */
import { Effect, Schema } from "effect"
import { Rpc } from "effect/rpc"
import * as Entity from "../../actors/Entity.js"

/** The withdrawal was larger than the balance. */
export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Number,
  requested: Schema.Number
}) {}

/** Deposits a positive amount; answers the new balance. */
export const Deposit = Rpc.make("Deposit", { payload: { amount: Schema.Number }, success: Schema.Number })
/** Withdraws an amount if the balance covers it; answers the new balance. */
export const Withdraw = Rpc.make("Withdraw", { payload: { amount: Schema.Number }, success: Schema.Number, error: InsufficientFunds })
/** Answers the balance and how many events the wallet has. */
export const Balance = Rpc.make("Balance", { success: Schema.Struct({ balance: Schema.Number, events: Schema.Number }) })

/** The wallet entity type. */
export const Wallet = Entity.make("wallet", [Deposit, Withdraw, Balance])

/** What happened to a wallet. */
export const WalletEvent = Schema.Union([
  Schema.TaggedStruct("Deposited", { amount: Schema.Number }),
  Schema.TaggedStruct("Withdrawn", { amount: Schema.Number })
])
export type WalletEvent = typeof WalletEvent.Type

/** A wallet's state. */
export const WalletState = Schema.Struct({ balance: Schema.Number, events: Schema.Number })
export type WalletState = typeof WalletState.Type

/** The wallet's persistence and handlers, reusable for wallet-like types. */
export const walletDefinition = {
  event: WalletEvent,
  state: WalletState,
  initial: (): WalletState => ({ balance: 0, events: 0 }),
  apply: (state: WalletState, event: WalletEvent): WalletState => ({
    balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount,
    events: state.events + 1
  }),
  snapshotEvery: 50,
  handlers: {
    Deposit: ({ amount }: { readonly amount: number }, context: Entity.EventSourcedContext<WalletState, WalletEvent>) =>
      Effect.map(context.emit({ _tag: "Deposited", amount }), () => context.state.balance),
    Withdraw: ({ amount }: { readonly amount: number }, context: Entity.EventSourcedContext<WalletState, WalletEvent>) =>
      amount > context.state.balance
        ? Effect.fail(new InsufficientFunds({ balance: context.state.balance, requested: amount }))
        : Effect.map(context.emit({ _tag: "Withdrawn", amount }), () => context.state.balance),
    Balance: (_: void, context: Entity.EventSourcedContext<WalletState, WalletEvent>) => Effect.succeed(context.state)
  }
}

/** The wallet's behaviour. */
export const WalletBehavior = Entity.eventSourced(Wallet, walletDefinition)

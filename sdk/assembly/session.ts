// ABI 1.2 bound sessions: the state of one client connection and its upstream connection, kept
// by the host in the control block and shared by the codec contexts of both sides. A codec of a
// stateful protocol keeps its connection state here, not in its own fields: after a trap, or in
// a context created again in a new instance, the host hands back the words as they were after
// the last call that succeeded.

import { SESSION_WORDS } from "./abi";
import { CTRL, C_EXPECT, C_SESSION } from "./host-io";

export class Session {
  /** Word `i` (0..5) of the session's state. */
  @inline static word(i: i32): u32 {
    return load<u32>(CTRL + C_SESSION + <usize>((i % SESSION_WORDS) << 2));
  }

  @inline static setWord(i: i32, v: u32): void {
    store<u32>(CTRL + C_SESSION + <usize>((i % SESSION_WORDS) << 2), v);
  }

  /** Byte `i` (0..23) of the session's state. */
  @inline static byte(i: i32): u8 {
    return load<u8>(CTRL + C_SESSION + <usize>(i % (SESSION_WORDS * 4)));
  }

  @inline static setByte(i: i32, v: u8): void {
    store<u8>(CTRL + C_SESSION + <usize>(i % (SESSION_WORDS * 4)), v);
  }

  /**
   * Upstream decode: the `Frame.expect` of the request the next response answers (0 when none
   * is waiting, as for a greeting).
   */
  @inline static expected(): u32 {
    return load<u32>(CTRL + C_EXPECT);
  }
}
